#!/usr/bin/env python3
"""A stream the client resets is reset upstream, and the other streams continue: a scripted
nghttp2 client opens 5 slow streams (2 s responses) on one connection through mitmd and
sends RST_STREAM(CANCEL) on one once its response began; the h2 origin receives a
RST_STREAM for that stream, the 4 others complete intact on the same connection. A client
that disconnects mid-response ends its stream at the origin too (RST_STREAM or the upstream
connection closed) at once."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h2lib  # noqa: E402
from harness import check, info, run, sha256_bytes, standard_setup, step, wait_until  # noqa

N = 5
RESET = 2
CHUNKS = 40  # /drip/40: 40 x 1000 bytes over 2 s


def test(env):
    w = standard_setup(env, origin=False, flows=True)
    org = h2lib.h2_origin(env, w.pki)

    step(f"client resets stream #{RESET} of {N} after its response head")
    res = h2lib.h2_client(env, w.mitmd, "www.origin.test", org.port, n=N,
                          path=f"/drip/{CHUNKS}", reset=RESET)
    want = sha256_bytes(h2lib.pattern_bytes(CHUNKS * 1000))
    reset = res["streams"][RESET]
    info(f"reset stream: {reset}")
    check(reset["reset_sent"] and reset["status"] == 200 and reset["bytes"] < CHUNKS * 1000,
          f"the client did not reset stream #{RESET} mid-response: {reset}")

    step("the other streams complete with intact bodies")
    others = [s for i, s in enumerate(res["streams"]) if i != RESET]
    bad = [s for s in others if s["status"] != 200 or s["sha256"] != want or s["close_code"]]
    check(not res["timed_out"] and not bad, f"streams failed after the reset: {bad}")

    step("the origin received RST_STREAM for that stream, and only for it")
    rsts = wait_until(lambda: org.events("rst-recv"), 3.0) or []
    info(f"origin RST_STREAM events: {rsts}")
    check(len(rsts) == 1, f"origin got {len(rsts)} RST_STREAM, expected 1")
    check(rsts[0]["code"] == "8", f"origin's RST_STREAM has error code {rsts[0]['code']}, "
          "expected the client's CANCEL (8)")
    check(len(org.events("request")) == N and len({r["conn"] for r in org.events("request")}) == 1,
          f"origin requests: {org.events('request')}")

    step("the flow records: 4 complete, the reset one carries an error")
    flows = h2lib.wait_flows(w.flows, N)
    errs = [f for f in flows if f.get("error")]
    check(len(flows) == N and len(errs) == 1, f"{len(flows)} flows, errors "
          f"{[f.get('error') for f in flows]}; expected exactly one with an error")
    info(f"reset flow error: {errs[0]['error']!r}")

    step("a client that disconnects mid-response ends the stream at the origin within 2 s")
    org2 = h2lib.h2_origin(env, w.pki, name="h2origin-2")
    sock = h2lib.h2_raw_connect(w.mitmd, "www.origin.test", org2.port)
    block = h2lib.hpack_get(f"www.origin.test:{org2.port}", "/drip/200")  # 10 s
    sock.sendall(h2lib.PREFACE + h2lib.frame(h2lib.FRAME_SETTINGS, 0, 0) + h2lib.frame(
        h2lib.FRAME_HEADERS, h2lib.FLAG_END_HEADERS | h2lib.FLAG_END_STREAM, 1, block))
    reader = h2lib.FrameReader(sock)
    while True:
        f = reader.next(5)
        check(f is not None, "no response DATA before the disconnect")
        if f[0] == h2lib.FRAME_DATA and f[2] == 1:
            break
    sock.close()
    t0 = time.monotonic()
    ended = wait_until(lambda: org2.events("rst-recv") or org2.events("conn-closed"), 2.0)
    info(f"origin after the disconnect ({time.monotonic() - t0:.2f}s): "
         f"{[e['kind'] for e in org2.events()]}")
    check(ended, "the origin still serves the stream 2 s after the client disconnected")


if __name__ == "__main__":
    h2lib.take_h2peer_arg()
    run(test, __doc__)
