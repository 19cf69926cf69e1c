#!/usr/bin/env python3
"""A GOAWAY from the origin ends the client connection after the streams in flight complete:
the h2 origin sends GOAWAY(NO_ERROR) once it has 3 requests (all 3 below its last stream id)
and finishes their 1 s responses; the client through mitmd gets all 3 intact, a GOAWAY, and
then the connection closes. A new connection works again."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h2lib  # noqa: E402
from harness import check, info, run, sha256_bytes, standard_setup, step  # noqa: E402

N = 3
CHUNKS = 20  # /drip/20: 1 s


def test(env):
    w = standard_setup(env, origin=False, flows=True)
    org = h2lib.h2_origin(env, w.pki, goaway_after=N)
    want = sha256_bytes(h2lib.pattern_bytes(CHUNKS * 1000))

    step(f"{N} streams in flight when the origin sends GOAWAY all complete")
    res = h2lib.h2_client(env, w.mitmd, "www.origin.test", org.port, n=N, path=f"/drip/{CHUNKS}")
    info(f"goaway {res['goaway']}, conn_ended {res['conn_ended']}")
    check(org.events("goaway-sent"), "the origin sent no GOAWAY (test setup)")
    bad = [s for s in res["streams"] if s["status"] != 200 or s["sha256"] != want
           or s["close_code"] != 0]
    check(not res["timed_out"] and not bad, f"in-flight streams failed after the origin's "
          f"GOAWAY: {bad}")

    step("the client got a GOAWAY without error, then the connection closed")
    check(res["goaway"] is not None, "no GOAWAY reached the client")
    check(res["goaway"]["error_code"] == 0, f"GOAWAY error code {res['goaway']['error_code']}"
          " (expected NO_ERROR)")
    check(res["conn_ended"], "mitmd kept the client connection open after the origin's GOAWAY "
          "and the last stream")

    step("streams opened after the origin's GOAWAY are refused, and never reach the origin")
    org2 = h2lib.h2_origin(env, w.pki, goaway_after=2, name="h2origin-2")
    res = h2lib.h2_client(env, w.mitmd, "www.origin.test", org2.port, n=4, path=f"/drip/{CHUNKS}",
                          stagger_ms=300)
    codes = [(s["status"], s["close_code"]) for s in res["streams"]]
    info(f"streams opened at 0/300/600/900 ms (status, close code): {codes}; "
         f"GOAWAY {res['goaway']}")
    check(codes[:2] == [(200, 0)] * 2 and all(s["sha256"] == want for s in res["streams"][:2]),
          f"the 2 streams before the GOAWAY: {res['streams'][:2]}")
    check(codes[2:] == [(0, 7)] * 2, f"the 2 streams after the GOAWAY: {codes[2:]}, expected "
          "no response and REFUSED_STREAM (7)")
    reqs = org2.events("request")
    check(len(reqs) == 2, f"the origin received {len(reqs)} requests, expected 2: {reqs}")

    step("a new connection through mitmd works")
    res2 = h2lib.h2_client(env, w.mitmd, "www.origin.test", org.port, n=1, path="/bytes/5000")
    s = res2["streams"][0]
    check(s["status"] == 200 and s["sha256"] == sha256_bytes(h2lib.pattern_bytes(5000)),
          f"new connection: {s}")


if __name__ == "__main__":
    h2lib.take_h2peer_arg()
    run(test, __doc__)
