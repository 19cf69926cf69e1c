#!/usr/bin/env python3
"""Answers mitmd makes by itself before any relay exists are flows with `error` set, like
mitmproxy's error flows: a CONNECT whose upstream refuses, a CONNECT whose host does not
resolve, an origin-form request and raw garbage each give one JSON Lines record (status,
request method/url, error) and one console line
`127.0.0.1:PORT: CONNECT host:port HTTP/1.1 << 502 Bad Gateway ... error: connection refused`."""
import json
import os
import re
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (TestFailure, check, free_port, info, proxy_connect,  # noqa: E402
                     recv_all, run, standard_setup, step, wait_until)


def raw_exchange(port, data):
    """raw_exchange sends data on a fresh connection and returns everything until EOF."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(data)
    out = recv_all(sock, timeout=5)
    sock.close()
    return out


def test(env):
    w = standard_setup(env, flows=True, origin=False)
    dead = free_port()
    refused = f"www.origin.test:{dead}"
    nxhost = "no-such-host.invalid:443"

    step(f"CONNECT {refused} (nothing listening) -> 502")
    sock, status, _, body = proxy_connect(w.mitmd.port, "www.origin.test", dead, timeout=5)
    sock.close()
    check(status == 502 and b"refused" in body, f"CONNECT answered {status} {body!r}")

    step(f"CONNECT {nxhost} (DNS failure) -> 502")
    sock, status, _, body = proxy_connect(w.mitmd.port, "no-such-host.invalid", 443, timeout=10)
    sock.close()
    check(status == 502 and b"DNS" in body, f"CONNECT answered {status} {body!r}")

    step("an origin-form request and raw garbage -> 400")
    out = raw_exchange(w.mitmd.port, b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n")
    check(out.startswith(b"HTTP/1.1 400 "), f"origin-form answered {out[:60]!r}")
    out = raw_exchange(w.mitmd.port, b"\x00\x01garbage\r\n\r\n")
    check(out.startswith(b"HTTP/1.1 400 "), f"garbage answered {out[:60]!r}")

    step("the console shows each as an error flow")
    pats = [
        re.compile(r"^127\.0\.0\.1:\d+: CONNECT " + re.escape(refused) +
                   r" HTTP/1\.1 << 502 Bad Gateway \S+ \S+ error: connection refused$", re.M),
        re.compile(r"^127\.0\.0\.1:\d+: CONNECT " + re.escape(nxhost) +
                   r" HTTP/1\.1 << 502 Bad Gateway .* error: DNS lookup .*$", re.M),
        re.compile(r"^127\.0\.0\.1:\d+: GET (http://\S+)?/index\.html HTTP/1\.1 << 400 Bad "
                   r"Request .* error: not a proxy request", re.M),
        re.compile(r"^127\.0\.0\.1:\d+: <invalid request> << 400 Bad Request .* error: ", re.M),
    ]
    for pat in pats:
        m = wait_until(lambda: pat.search(w.mitmd.stdout()), 3)
        check(m, f"no console line matching {pat.pattern!r}:\n{w.mitmd.stdout()}")
        info(m.group(0))

    step("the counters: 2 client errors (the 400s), 2 upstream errors (the 502s), 4 flows")
    stats_re = re.compile(r"stats: accepted=\d+ active=\d+ flows=(\d+) client_errors=(\d+) "
                          r"upstream_errors=(\d+)")

    def stats():
        os.kill(w.mitmd.pid, signal.SIGUSR1)  # the master logs the workers' sums
        time.sleep(0.2)
        found = stats_re.findall(w.mitmd.stderr())
        return found and found[-1] == ("4", "2", "2") and found[-1]

    got = wait_until(stats, 4, interval=0.1)
    check(got, "stats never reached flows=4 client_errors=2 upstream_errors=2; last: "
          f"{stats_re.findall(w.mitmd.stderr())[-1:]}")

    step("the -w file has one record per answer, with status, request and error")
    w.mitmd.stop()
    with open(w.flows, "rb") as f:
        raw = f.read()
    check(raw.endswith(b"\n"), "flow file does not end with a newline")
    recs = []
    for i, line in enumerate(raw.decode().splitlines()):
        try:
            recs.append(json.loads(line))
        except ValueError as e:
            raise TestFailure(f"line {i + 1} is not JSON ({e}): {line[:200]!r}")
    check(len(recs) == 4, f"{len(recs)} records, expected 4:\n{raw.decode()[:3000]}")
    by_url = {r["request"]["url"]: r for r in recs}

    r = by_url.get(refused)
    check(r is not None, f"no record with request.url {refused!r}: {sorted(by_url)}")
    check(r["request"]["method"] == "CONNECT", f"method {r['request']['method']!r}")
    check(r["response"] and r["response"]["status"] == 502, f"response {r['response']!r}")
    check(r["error"] == "connection refused", f"error {r['error']!r}")
    check(r["client"]["address"] == "127.0.0.1", f"client {r['client']!r}")
    check(r["server"]["host"] == "www.origin.test" and r["server"]["port"] == dead and
          r["server"]["address"] == "127.0.0.1", f"server {r['server']!r}")
    check(r["tls"] is None, f"tls {r['tls']!r}")

    r = by_url.get(nxhost)
    check(r is not None, f"no record with request.url {nxhost!r}: {sorted(by_url)}")
    check(r["response"]["status"] == 502 and "DNS" in (r["error"] or ""),
          f"DNS failure record: status {r['response']['status']}, error {r['error']!r}")

    r = by_url.get("/index.html") or by_url.get("http://x/index.html")
    check(r is not None and r["response"]["status"] == 400 and r["error"],
          f"origin-form record: {r!r}")
    r = by_url.get("")
    check(r is not None and r["response"]["status"] == 400 and r["error"],
          f"garbage record: {r!r}")


if __name__ == "__main__":
    run(test, __doc__)
