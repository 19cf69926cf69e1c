"""features.py - the feature rows: mitmd with rules on, and mitmd answering from a recording.

Owns what those rows need beyond an ordinary mitmd instance: the 10-rule set of `rules-10`
(the rule set of the rules micro-benchmark, tests/unit/bench_flowfilter.c), the recording
that `server-replay` answers from (made on the spot by a mitmd with -w, then stopped), the
extra mitmd arguments of each instance kind, the rule counters read from /metrics, and the
on/off comparison (CPU per request with the feature / without) for the full run's targets
table and for the A/B run. suite.py runs the rows (each feature instance alternating with a
plain mitmd on the same load, in slices, as the mode row does); ab.py runs them on both
builds. Standard library only.
"""
import os
import re
import urllib.request

RULES_SCENARIO = "rules-10"
REPLAY_SCENARIO = "server-replay"
RULES_KIND = "mitmd-rules"
REPLAY_KIND = "mitmd-replay"
KINDS = (RULES_KIND, REPLAY_KIND)
RULES_LIMIT = 1.10  # issue 12: keep-alive CPU per request with the 10 rules / without
RECORD_REQUESTS = 64  # requests the recording for server-replay holds

# The rules micro-benchmark's set (tests/unit/bench_flowfilter.c), in mitmd's --set syntax.
# Its flow is on api.test; here the one header rule that matches every request there
# matches www.bench.test instead, so that each request of the row gets one header edit and
# the other nine filters are evaluated and do not match (a realistic load-test rule set:
# nothing blocked, mapped, delayed or failed on the hot path).
RULES_10 = [
    ("block_list", "/~d ads\\.test/404"),
    ("block_list", ":~u /admin:403"),
    ("map_remote", "|~d legacy|//legacy\\.test/|//api.test/"),
    ("modify_headers", "/~d bench\\.test/X-Env/load"),
    ("modify_headers", "/~m POST/X-Post/1"),
    ("modify_headers", "/~hq Authorization/X-Auth/seen"),
    ("inject_latency", "/~d slow\\.test/100ms~20ms"),
    ("inject_latency", ":~u /v2/:5ms"),
    ("inject_error", "/~d flaky\\.test/503@5"),
    ("inject_fault", "/~d reset\\.test/1/reset"),
]


def rules_argv():
    """rules_argv returns the mitmd arguments that set RULES_10."""
    out = []
    for name, spec in RULES_10:
        out += ["--set", "%s=%s" % (name, spec)]
    return out


def replay_argv(recording):
    """replay_argv returns the mitmd arguments of the server-replay instance: answer from
    `recording`, every matching request from the first recorded response (the row sends far
    more requests than the recording holds), anything else 404 (counted as an error by
    mitmd-bench, so a key that stops matching fails the row instead of going upstream)."""
    return ["-S", recording, "--set", "server_replay_reuse=true",
            "--set", "server_replay_extra=404"]


def count_records(path):
    """count_records returns how many lines of the -w file `path` are flow records with a
    response status (0 when the file is missing)."""
    n = 0
    try:
        with open(path, "rb") as f:
            for line in f:
                if b'"response"' in line and b'"status"' in line:
                    n += 1
    except OSError:
        return 0
    return n


def rule_counters(text):
    """rule_counters parses mitmd_rule_applications_total{rule="KIND"} N lines of a /metrics
    page into {KIND: N} (only the nonzero ones)."""
    out = {}
    for m in re.finditer(r'^mitmd_rule_applications_total\{rule="([^"]+)"\} (\d+)', text,
                         re.M):
        if int(m.group(2)):
            out[m.group(1)] = int(m.group(2))
    return out


def scrape(port, timeout=5.0):
    """scrape returns the text of http://127.0.0.1:port/metrics, or None."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                    timeout=timeout) as r:
            return r.read().decode(errors="replace")
    except OSError:
        return None


def _cpu(rows, scenario, target, ok):
    for r in rows:
        if r.get("scenario") == scenario and r.get("target") == target and ok(r):
            return r.get("cpu_s_per_1k")
    return None


def _ok(r):
    return r.get("requests", 0) > 0 and not r.get("failed")


def on_off(rows):
    """on_off returns the full run's feature comparisons from its rows: {"rules": (on, off,
    ratio), "replay": (replay, live, ratio)}, CPU s/1k req of the feature instance and of the
    plain mitmd that alternated with it on the same row (None where a side is missing)."""
    out = {}
    for key, sc, kind in (("rules", RULES_SCENARIO, RULES_KIND),
                          ("replay", REPLAY_SCENARIO, REPLAY_KIND)):
        on, off = _cpu(rows, sc, kind, _ok), _cpu(rows, sc, "mitmd", _ok)
        out[key] = (on, off, on / off if on and off else None)
    return out


def ab_on_off(summary):
    """ab_on_off returns, from an A/B summary (ab.summarize), the feature rows against the
    plain keep-alive row of the same build: {"rules": {"baseline": ratio, "candidate":
    ratio}, "replay": {...}}, CPU per request pooled over the rounds; None where a row is
    missing."""
    by = {e["scenario"]: e for e in summary}
    plain = by.get("h1-keepalive-1k") or {}
    out = {}
    for key, sc in (("rules", RULES_SCENARIO), ("replay", REPLAY_SCENARIO)):
        e = by.get(sc)
        if e is None:
            continue
        out[key] = {}
        for build in ("baseline", "candidate"):
            on, off = e.get(build + "_cpu_s_per_1k"), plain.get(build + "_cpu_s_per_1k")
            out[key][build] = on / off if on and off else None
    return out


def _x(v):
    return "-" if v is None else "%.2fx" % v


def ab_markdown(feat):
    """ab_markdown renders ab_on_off's result as markdown lines (none when no feature row
    ran)."""
    out = []
    if "rules" in feat:
        r = feat["rules"]
        out.append("Rules on / off (%s / h1-keepalive-1k, CPU per request, same build): "
                   "baseline %s, candidate %s (issue 12's limit: %.2fx)." % (
                       RULES_SCENARIO, _x(r["baseline"]), _x(r["candidate"]), RULES_LIMIT))
    if "replay" in feat:
        r = feat["replay"]
        out.append("Server replay / live origin (%s / h1-keepalive-1k, CPU per request of "
                   "mitmd, same build): baseline %s, candidate %s." % (
                       REPLAY_SCENARIO, _x(r["baseline"]), _x(r["candidate"])))
    return out


def targets(rows, check):
    """targets returns the full run's targets entries for the feature rows; `check` is
    report._check."""
    f = on_off(rows)
    on, off, v = f["rules"]
    out = [check("CPU per request, HTTP/1.1 keep-alive 1 KiB: 10 rules on / off (%s)"
                 % RULES_SCENARIO, "<= %.2fx" % RULES_LIMIT, v, lambda x: x <= RULES_LIMIT,
                 "-" if v is None else "%.2fx (%.3f vs %.3f s/1k req)" % (v, on, off))]
    on, off, v = f["replay"]
    out.append(check("Reference: server replay / live origin, mitmd CPU per request (%s)"
                     % REPLAY_SCENARIO, "-", v, None,
                     "-" if v is None else "%.2fx (%.3f vs %.3f s/1k req)" % (v, on, off)))
    return out


def markdown(rows):
    """markdown renders the full run's feature lines (none when those rows did not run)."""
    f = on_off(rows)
    out = []
    on, off, v = f["rules"]
    if on or off:
        out.append("Rules row (%s, mitmd-bench keep-alive 1 KiB, mitmd with the 10-rule set "
                   "and plain mitmd alternating): CPU per request %s vs %s s/1k req: on / "
                   "off %s (limit %.2fx)." % (RULES_SCENARIO, num3(on), num3(off), _x(v),
                                              RULES_LIMIT))
    on, off, v = f["replay"]
    if on or off:
        out.append("Server replay row (%s, mitmd-bench keep-alive 1 KiB, mitmd answering "
                   "from a recording and plain mitmd forwarding to the origin, "
                   "alternating): mitmd CPU per request %s vs %s s/1k req: replay / live "
                   "%s." % (REPLAY_SCENARIO, num3(on), num3(off), _x(v)))
    return [y for x in out for y in ("", x)]


def num3(v):
    return "-" if v is None else "%.3f" % v


def extra_argv(kind, recording):
    """extra_argv returns the arguments a feature instance kind adds to mitmd's."""
    if kind == RULES_KIND:
        return rules_argv()
    if kind == REPLAY_KIND:
        if not recording or not os.path.exists(recording):
            raise RuntimeError("no recording for server replay")
        return replay_argv(recording)
    return []
