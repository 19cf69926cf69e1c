"""longpath.py - the long-path rows: HTTP/2 over a 50 ms round trip, directly and through mitmd.

Owns running tests/integration/longpath/h2_download_50ms.py (nginx origin, PKI, mitmd and
bench/delayline set up and stopped by the test itself; its pass/fail threshold turned off) as
child processes of the suite, and parsing their RESULT line. The delay line sits between
mitmd and the origin, so the rows measure the receive window mitmd keeps open toward the
origin. (The upload test needs h2peer, a test binary: tests/run runs it, the suite does not.)
Issue 14's row is the 10 MB download at 100 Mbit/s (12.5 MB/s): mitmd's median body
throughput >= 0.9x of direct.
"""
import os
import re
import subprocess
import time

# (key, test file, link MB/s, what, issue 14's limit on mitmd / direct or None: reference)
ROWS = (
    ("h2-download-10m-50ms", "h2_download_50ms.py", "12.5",
     "HTTP/2 10 MB download, 50 ms RTT, 100 Mbit/s link", 0.9),
    ("h2-download-10m-50ms-200mbit", "h2_download_50ms.py", "25",
     "HTTP/2 10 MB download, 50 ms RTT, 200 Mbit/s link", None),
)
DELAY_MS = 25  # one way
TIMEOUT_S = 300

_RESULT = re.compile(r"^RESULT direct_MBps=([0-9.]+) mitmd_MBps=([0-9.]+) ratio=([0-9.]+)",
                     re.M)


def parse_result(text):
    """parse_result returns (direct MB/s, mitmd MB/s, ratio) from a long-path test's output,
    or None when it has no RESULT line."""
    m = _RESULT.search(text)
    if not m:
        return None
    return float(m.group(1)), float(m.group(2)), float(m.group(3))


def run_rows(procs_, repo, mitmd, delayline, log_dir, runs, keys=None, interrupted=()):
    """run_rows runs the ROWS (only `keys` when given), each `runs` interleaved times, and
    returns a list of {key, what, rate_MBps, delay_ms, runs, limit, direct_MBps, mitmd_MBps,
    ratio} or, for a row that failed, {key, what, ..., failed: reason}. Each test runs under
    procs_ (stopped by PID, also when the suite is interrupted: exceptions of the types in
    `interrupted` are re-raised after the stop)."""
    out = []
    here = os.path.join(repo, "tests", "integration", "longpath")
    for key, test, rate, what, limit in ROWS:
        if keys and key not in keys:
            continue
        row = {"key": key, "what": what, "rate_MBps": float(rate), "delay_ms": DELAY_MS,
               "runs": runs, "limit": limit}
        argv = ["python3", os.path.join(here, test), "--mitmd", mitmd, "--delayline", delayline,
                "--rate", rate, "--delay-ms", str(DELAY_MS), "--runs", str(runs),
                "--min-ratio", "0"]
        name = "longpath-" + key
        t0 = time.monotonic()
        p = procs_.start(name, argv)
        try:
            while p.poll() is None and time.monotonic() - t0 < TIMEOUT_S:
                time.sleep(0.2)
        except interrupted:
            procs_.stop(p)
            raise
        timed_out = p.poll() is None
        procs_.stop(p)
        try:
            with open(os.path.join(log_dir, name + ".log"), errors="replace") as f:
                text = f.read()
        except OSError:
            text = ""
        got = parse_result(text)
        if timed_out:
            row["failed"] = "no result after %d s" % TIMEOUT_S
        elif p.returncode != 0 or got is None:
            tail = " / ".join(text.strip().splitlines()[-3:])[-300:]
            row["failed"] = "exit %s: %s" % (p.returncode, tail)
        else:
            row["direct_MBps"], row["mitmd_MBps"], row["ratio"] = got
        row["seconds"] = round(time.monotonic() - t0, 1)
        out.append(row)
    return out


def markdown(rows):
    """markdown renders the long-path rows (markdown lines; none when there are none)."""
    if not rows:
        return []
    out = ["", "Long path (tests/integration/longpath: curl --http2, 10 MB, bench/delayline "
           "%d ms each way with a link rate, directly and through mitmd, interleaved; medians; "
           "every body's SHA-256 checked):" % DELAY_MS, "",
           "| row | runs | direct MB/s | mitmd MB/s | mitmd / direct | target |",
           "|---|---|---|---|---|---|"]
    for r in rows:
        limit = "-" if r.get("limit") is None else ">= %.2fx" % r["limit"]
        if r.get("failed"):
            out.append("| %s | %d | - | - | failed: %s | %s |" % (
                r["what"], r["runs"], re.sub(r"\s+", " ", r["failed"]).replace("|", "\\|"),
                limit))
        else:
            out.append("| %s | %d | %.2f | %.2f | %.3fx | %s |" % (
                r["what"], r["runs"], r["direct_MBps"], r["mitmd_MBps"], r["ratio"], limit))
    return out


def targets(rows, check):
    """targets returns the targets entries of the rows with a limit, made by report's
    check(what, limit, value, ok, measured)."""
    out = []
    for key, _test, _rate, what, limit in ROWS:
        if limit is None:
            continue
        r = next((x for x in rows if x["key"] == key), None)
        if r is None:
            continue
        v = None if r.get("failed") else r["ratio"]
        out.append(check("Long path: %s, mitmd / direct body throughput" % what,
                         ">= %.2fx" % limit, v, lambda x, limit=limit: x >= limit,
                         "-" if v is None else "%.3fx (%.2f vs %.2f MB/s, median of %d)" % (
                             v, r["mitmd_MBps"], r["direct_MBps"], r["runs"])))
    return out
