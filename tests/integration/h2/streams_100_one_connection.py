#!/usr/bin/env python3
"""100 concurrent streams on one HTTP/2 connection through mitmd all succeed: a scripted
nghttp2 client opens 100 streams at once (mitmd's SETTINGS_MAX_CONCURRENT_STREAMS) to an h2
origin whose responses take 0.5 s each; all get 200 with intact bodies, in about the time of
one, over one upstream connection."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h2lib  # noqa: E402
from harness import check, info, run, sha256_bytes, standard_setup, step  # noqa: E402

N = 100
CHUNKS = 10  # /drip/10: 10 x 1000 bytes, one per 50 ms


def test(env):
    w = standard_setup(env, origin=False, flows=True)
    org = h2lib.h2_origin(env, w.pki)

    step(f"{N} concurrent streams on one connection all answer 200 with intact bodies")
    t0 = time.monotonic()
    res = h2lib.h2_client(env, w.mitmd, "www.origin.test", org.port, n=N,
                          path=f"/drip/{CHUNKS}")
    took = time.monotonic() - t0
    want = sha256_bytes(h2lib.pattern_bytes(CHUNKS * 1000))
    bad = [s for s in res["streams"]
           if s["status"] != 200 or s["bytes"] != CHUNKS * 1000 or s["sha256"] != want
           or s["close_code"] != 0]
    info(f"{N} streams took {took:.2f}s; {len(bad)} bad")
    check(not res["timed_out"], "the client timed out waiting for its streams")
    check(len(res["streams"]) == N and not bad, f"{len(bad)} of {N} streams failed, e.g. "
          f"{bad[:3]}")
    # one after the other they would take N x 0.5 s; concurrently about 0.5 s
    check(took < 8, f"{N} streams of 0.5 s took {took:.1f}s: not concurrent")

    step("upstream: all streams on one connection, at the same time")
    reqs = org.events("request")
    conns = {r["conn"] for r in reqs}
    check(len(reqs) == N and len(conns) == 1, f"origin saw {len(reqs)} requests on "
          f"connections {conns}, expected {N} on one")

    step(f"{N} HTTP/2.0 flow records on one client port")
    flows = h2lib.wait_flows(w.flows, N)
    ports = {f["client"]["port"] for f in flows}
    vers = {f["request"]["httpVersion"] for f in flows}
    codes = {f["response"]["status"] for f in flows}
    check(len(flows) == N and ports.__len__() == 1 and vers == {"HTTP/2.0"} and codes == {200},
          f"{len(flows)} records, client ports {ports}, versions {vers}, statuses {codes}")


if __name__ == "__main__":
    h2lib.take_h2peer_arg()
    run(test, __doc__)
