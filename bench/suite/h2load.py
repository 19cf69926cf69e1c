"""h2load.py - the suite's second load generator: nghttp2's h2load (Debian nghttp2-client).

Owns h2load's command line for a row and the reading of its output: the summary it prints
and the per-request log (--log-file) that the latency percentiles come from, turned into a
summary dict of the shape mitmd-bench's --json writes (requests, errors, first_error, rps,
latency_us, protocol), so that suite.py measures a row the same way whichever client drives
it. Pure functions except where a function says it reads a file.

h2load does not verify the server's certificate (suite.py checks each target's certificate
once with the CA before its rows), cannot speak through a CONNECT proxy (so it drives mitmd in
reverse mode, nginx's reverse proxy and the origin), and resumes its last TLS session when it
reconnects (so its one-request-per-connection row is a resumed handshake each time).
"""
import re

# The host name in every URL: the SNI and Host (or :authority) h2load sends.
HOST = "www.bench.test"


def argv(binary, port, path, args, log_path, seconds=None, warm_s=None, requests=None,
         threads=2):
    """argv returns an h2load command line against 127.0.0.1:port for https://HOST:port/path
    with the scenario's `args`, writing per-request lines to `log_path`. Timed (seconds, with
    an in-process warm-up of warm_s when given: h2load counts nothing before it) or counted
    (requests: the run ends after that many, across all clients)."""
    out = [binary, "-t", str(threads), "--log-file", log_path] + list(args)
    if requests is not None:
        out += ["-n", str(requests)]
    else:
        out += ["-D", "%dms" % max(1, round(seconds * 1000))]
        if warm_s:
            out += ["--warm-up-time", "%dms" % max(1, round(warm_s * 1000))]
    out += ["--connect-to", "127.0.0.1:%d" % port, "https://%s:%d%s" % (HOST, port, path)]
    return out


_NUM = r"([0-9]+(?:\.[0-9]+)?)"
_UNITS = {"us": 1.0, "ms": 1000.0, "s": 1e6}


def _us(text):
    """_us converts an h2load duration ("263us", "32.72ms", "1.5s") to microseconds."""
    m = re.fullmatch(_NUM + r"(us|ms|s)", text.strip())
    if not m:
        raise ValueError("not a duration: %r" % text)
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_output(text):
    """parse_output reads h2load's printed summary. Returns a dict: finished_s, total, started,
    done, succeeded, failed, errored, timeout, status (counts of 2xx..5xx), protocol (ALPN, or
    None), and for "connect", "ttfb" and "request" the {min, max, mean, sd} in microseconds
    (h2load prints no percentiles of those; the row's come from the log). Raises ValueError
    when the summary lines are missing (h2load did not run to its end)."""
    out = {"protocol": None}
    m = re.search(r"^finished in " + _NUM + r"(us|ms|s), " + _NUM + r" req/s", text, re.M)
    if not m:
        raise ValueError("no 'finished in' line in h2load's output")
    out["finished_s"] = float(m.group(1)) * _UNITS[m.group(2)] / 1e6
    out["printed_rps"] = float(m.group(3))
    m = re.search(r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored, (\d+) timeout", text, re.M)
    if not m:
        raise ValueError("no 'requests:' line in h2load's output")
    for i, k in enumerate(("total", "started", "done", "succeeded", "failed", "errored",
                           "timeout")):
        out[k] = int(m.group(i + 1))
    m = re.search(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text, re.M)
    out["status"] = {k: int(m.group(i + 1)) if m else 0
                     for i, k in enumerate(("2xx", "3xx", "4xx", "5xx"))}
    m = re.search(r"^Application protocol: (\S+)", text, re.M)
    if m:
        out["protocol"] = m.group(1)
    for key, label in (("request", "time for request"), ("connect", "time for connect"),
                       ("ttfb", "time to 1st byte")):
        m = re.search("^" + label + r":\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", text, re.M)
        if m:
            try:
                out[key] = {k: _us(m.group(i + 1)) for i, k in
                            enumerate(("min", "max", "mean", "sd"))}
            except ValueError:
                pass
    return out


def read_log(path):
    """read_log reads an h2load --log-file: one line per request, tab-separated start time
    (us since the epoch), HTTP status (-1: the stream failed) and microseconds until the end
    of the response. Returns (latencies in us of the 2xx responses, count of the others).
    Status 0 counts as a response: a timed run logs it for a response whose head arrived in
    the warm-up and whose end in the measured time (h2load counts it as succeeded, not in
    its status codes); -1 (failed stream) and non-2xx statuses count as others. Reads the
    file."""
    lat, bad = [], 0
    with open(path) as f:
        for line in f:
            parts = line.split("\t")
            if len(parts) < 3:
                continue
            try:
                status, us = int(parts[1]), float(parts[2])
            except ValueError:
                continue
            if 200 <= status < 300 or status == 0:
                lat.append(us)
            else:
                bad += 1
    return lat, bad


def percentiles(lat):
    """percentiles returns {p50, p90, p99, max, mean} (us) of a list of latencies (nearest
    rank), or None for an empty list."""
    if not lat:
        return None
    s = sorted(lat)
    n = len(s)
    rank = lambda p: s[min(n - 1, max(0, -(-p * n // 100) - 1))]
    return {"p50": rank(50), "p90": rank(90), "p99": rank(99), "max": s[-1],
            "mean": sum(s) / n}


def _first_error(parsed, bad_in_log, text):
    """_first_error says why requests failed, from what h2load tells (counts and any line of
    its output that is not part of the summary)."""
    if not (parsed["failed"] or parsed["errored"] or parsed["timeout"] or bad_in_log):
        return None
    st = parsed["status"]
    why = "h2load: %d failed (%d errored, %d timeout), status codes 2xx %d, 3xx %d, 4xx %d, " \
          "5xx %d" % (parsed["failed"], parsed["errored"], parsed["timeout"], st["2xx"],
                      st["3xx"], st["4xx"], st["5xx"])
    known = re.compile(r"^(starting benchmark|spawning thread|progress:|Warm-up|Main benchmark|"
                       r"Stopped all|finished in|requests:|status codes:|traffic:|\s+min|"
                       r"time for|time to|req/s|TLS Protocol|Cipher|Server Temp Key|"
                       r"Application protocol|\s*$)")
    extra = [l.strip() for l in text.splitlines() if not known.match(l)]
    if extra:
        why += "; " + extra[0][:160]
    return why


def summary(text, log_path, seconds=None):
    """summary turns h2load's output `text` and its --log-file into a summary dict shaped like
    mitmd-bench's --json: requests (2xx responses in the log), errors (the other logged
    requests, or h2load's failed count when larger: a connection that never came up logs
    nothing), first_error, rps (requests / the measured seconds: `seconds` for a timed run,
    h2load's own elapsed time for a counted one), latency_us (from each request's send to
    its last byte), protocol, and h2load's own figures under "h2load". Raises ValueError
    when h2load's summary is missing. Reads the log file."""
    parsed = parse_output(text)
    lat, bad = read_log(log_path)
    elapsed = seconds if seconds is not None else parsed["finished_s"]
    n = len(lat)
    errors = max(bad, parsed["failed"])
    return {
        "requests": n,
        "errors": errors,
        "first_error": _first_error(parsed, bad, text),
        "rps": n / elapsed if elapsed > 0 else 0.0,
        "latency_us": percentiles(lat) or {"p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0,
                                           "mean": 0.0},
        "protocol": parsed["protocol"],
        "elapsed_s": elapsed,
        "h2load": parsed,
    }, lat
