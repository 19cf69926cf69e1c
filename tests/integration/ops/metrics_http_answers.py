#!/usr/bin/env python3
"""The metrics listener answers like a small, bounded HTTP server: 200 /metrics in the
Prometheus text format (HELP/TYPE, cumulative buckets, +Inf == _count), HEAD without a body,
405 (with Allow) for POST, 404 for another path, 400 for garbage, 431 for a huge head; 8
scrapers that connect and send nothing take every slot, the 9th is answered 503 at once,
the proxy still forges and serves meanwhile, and the idle ones are closed after 5 s."""
import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import check, curl, info, run, standard_setup, step, wait_until  # noqa: E402
from opslib import METRICS_ARGS, http_get, metrics_port, raw_request, scrape  # noqa: E402


def test(env):
    w = standard_setup(env, origin=False, workers=1, extra_args=METRICS_ARGS)
    m = w.mitmd
    mport = metrics_port(m)

    step("GET /metrics: the text format, histograms cumulative with +Inf == _count")
    samples, types = scrape(mport)
    hists = [f for f, t in types.items() if t == "histogram"]
    check(len(hists) >= 5, f"histograms: {hists}")
    for h in hists:
        buckets = [(k[1], v) for k, v in samples.items() if k[0] == h + "_bucket"]
        vals = [v for _, v in buckets]
        check(vals == sorted(vals), f"{h} buckets not cumulative: {buckets}")
        check(buckets[-1][0] == '{le="+Inf"}', f"{h}: last bucket {buckets[-1][0]}")
        check(vals[-1] == samples[(h + "_count", "")], f"{h}: +Inf != _count")
    for fam, t in types.items():
        check(fam.startswith("mitmd_"), f"family {fam} without the mitmd_ prefix")
        check(t != "counter" or fam.endswith("_total"), f"counter {fam} without _total")

    step("HEAD /metrics: 200, no body; POST: 405 with Allow; /nope: 404")
    st, hdrs, body = http_get(mport, "/metrics", method="HEAD")
    check(st == 200 and body == b"" and int(hdrs["content-length"]) > 1000,
          f"HEAD: {st} {hdrs} {len(body)}")
    st, hdrs, _ = http_get(mport, "/metrics", method="POST")
    check(st == 405 and hdrs.get("allow") == "GET, HEAD", f"POST: {st} {hdrs}")
    st, _, _ = http_get(mport, "/nope")
    check(st == 404, f"/nope: {st}")
    st, _, _ = http_get(mport, "/metrics?x=1")
    check(st == 200, f"/metrics?x=1: {st}")

    step("garbage: 400; a 6 KiB head: 431")
    out = raw_request(mport, b"\x16\x03\x01garbage\r\n\r\n")
    check(out.startswith(b"HTTP/1.1 400 "), f"garbage: {out[:60]!r}")
    out = raw_request(mport, b"GET /metrics HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 6000 +
                      b"\r\n\r\n")
    check(out.startswith(b"HTTP/1.1 431 "), f"huge head: {out[:60]!r}")

    step("8 idle scrapers take every slot: the 9th gets 503 at once")
    idle = [socket.create_connection(("127.0.0.1", mport), timeout=10) for _ in range(8)]
    t_idle = time.monotonic()
    time.sleep(0.2)
    t0 = time.monotonic()
    out = raw_request(mport, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    check(out.startswith(b"HTTP/1.1 503 "), f"9th scraper: {out[:60]!r}")
    check(time.monotonic() - t0 < 1.0, "the 9th scraper waited")

    step("meanwhile the proxy forges for a new name and serves")
    t0 = time.monotonic()
    code, body, err = curl(env, m.port, f"https://fresh.origin.test:{w.nginx.ports['valid']}/1k",
                           cafile=m.ca_cert, timeout=10)
    check(code == 200 and len(body) == 1024, f"HTTP {code}: {err.strip()}")
    info(f"request with a forge took {time.monotonic() - t0:.2f}s with 8 idle scrapers")

    step("the idle scrapers are closed by the master after ~5 s; /metrics serves again")
    for s in idle:
        s.settimeout(max(0.1, t_idle + 8.0 - time.monotonic()))
        try:
            got = s.recv(100)
        except socket.timeout:
            got = None
        except ConnectionResetError:
            got = b""
        check(got == b"", f"idle scraper not closed within 8 s (got {got!r})")
        s.close()
    took = time.monotonic() - t_idle
    info(f"idle scrapers closed after {took:.1f}s")
    check(took >= 4.5, f"idle scrapers closed after only {took:.1f}s")
    samples, _ = scrape(mport)
    check(wait_until(lambda: scrape(mport)[0].get(("mitmd_cert_forges_total", "")) == 1, 3.0),
          "mitmd_cert_forges_total != 1")
    check(re.search(r"mitmd", str(samples)), "no samples")


if __name__ == "__main__":
    run(test, __doc__)
