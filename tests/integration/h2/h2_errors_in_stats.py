#!/usr/bin/env python3
"""The master's stats line (SIGUSR1) counts HTTP/2 client errors and floods in its own h2_*
counters: after one connection with an invalid frame and one PING flood, h2_client_errors
grew by 2 and h2_floods by 1; after 5 streams from a normal client, h2_streams grew by 5."""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h2lib  # noqa: E402
from h2lib import FRAME_DATA, FRAME_PING, FRAME_SETTINGS, PREFACE, frame  # noqa: E402
from harness import check, info, run, standard_setup, step  # noqa: E402

HOST = "www.origin.test"


def attack(m, port, data, want_code):
    sock = h2lib.h2_raw_connect(m, HOST, port)
    h2lib.send_all(sock, data)
    goaway, counts, closed = h2lib.read_until_goaway(sock, timeout=8)
    sock.close()
    check(goaway is not None and goaway[1] == want_code,
          f"expected GOAWAY with error {want_code}, got {goaway} (frames {counts})")


def test(env):
    w = standard_setup(env, origin=False)
    m = w.mitmd
    org = h2lib.h2_origin(env, w.pki)
    base = h2lib.mitmd_stats(m)

    step("5 streams of a normal client, one invalid frame, one PING flood")
    res = h2lib.h2_client(env, m, HOST, org.port, n=5, path="/bytes/100")
    check([s["status"] for s in res["streams"]] == [200] * 5, f"streams: {res['streams']}")
    attack(m, w.nginx.h2_port, PREFACE + frame(FRAME_SETTINGS, 0, 0) +
           frame(FRAME_DATA, 0, 0, b"x"), 1)
    attack(m, w.nginx.h2_port, PREFACE + frame(FRAME_SETTINGS, 0, 0) + b"".join(
        frame(FRAME_PING, 0, 0, struct.pack(">Q", i)) for i in range(3000)), 11)

    step("the master's stats line shows them in h2_streams, h2_client_errors, h2_floods")
    st = h2lib.wait_stat(m, "h2_client_errors", base.get("h2_client_errors", 0) + 2)
    grew = {k: st.get(k, 0) - base.get(k, 0)
            for k in ("client_errors", "h2_streams", "h2_client_errors", "h2_floods")}
    info(f"counters grew by {grew}")
    check(all(k in st for k in ("h2_streams", "h2_client_errors", "h2_floods")),
          f"the stats line lacks h2 counters: {sorted(st)}")
    check(grew["h2_streams"] == 5, f"h2_streams grew by {grew['h2_streams']}, expected 5")
    check(grew["h2_client_errors"] == 2,
          f"h2_client_errors grew by {grew['h2_client_errors']}, expected 2 (the generic "
          f"client_errors grew by {grew['client_errors']})")
    check(grew["h2_floods"] == 1, f"h2_floods grew by {grew['h2_floods']}, expected 1")


if __name__ == "__main__":
    h2lib.take_h2peer_arg()
    run(test, __doc__)
