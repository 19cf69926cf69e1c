#!/usr/bin/env python3
"""Measurement (not a ctest test): the worker's memory with N open HTTP/2 connections.
Starts the usual test world (nginx h2 origin, one mitmd worker), opens N connections through
mitmd (CONNECT, TLS with ALPN h2 verified against mitmd's CA, client preface + SETTINGS, and
waits for mitmd's SETTINGS), holds them all open and prints the worker's VmRSS before and
after, as JSON. Run: python3 hold_h2_conns.py --mitmd BUILD/mitmd [--conns 1000] [--h1]
(--h1: ALPN http/1.1 and TLS only, the same measurement for comparison)."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h2lib  # noqa: E402
import harness  # noqa: E402
from h2lib import FRAME_SETTINGS, PREFACE, frame  # noqa: E402
from harness import check, info, run, standard_setup, step  # noqa: E402

CONNS = 1000
H1 = False  # --h1: the same with ALPN http/1.1 (TLS only, no request), for comparison


def take_conns_arg():
    global CONNS, H1
    if "--h1" in sys.argv:
        sys.argv.remove("--h1")
        H1 = True
    if "--conns" in sys.argv:
        i = sys.argv.index("--conns")
        CONNS = int(sys.argv[i + 1])
        del sys.argv[i:i + 2]


def vm_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def test(env):
    w = standard_setup(env, origin=False, workers=1, extra_args=["-q"])
    m = w.mitmd
    pids = m.wait_workers(1)
    check(pids, "no worker")
    wpid = pids[0]
    # one h2 connection first, so that lazily built state (TLS contexts, cert) is there
    warm = h2lib.h2_raw_connect(m, "www.origin.test", w.nginx.h2_port)
    warm.sendall(PREFACE + frame(FRAME_SETTINGS, 0, 0))
    h2lib.FrameReader(warm).next(5)
    time.sleep(0.5)
    base = vm_kib(wpid, "VmRSS")

    step(f"open {CONNS} {'HTTP/1.1' if H1 else 'h2'} connections through mitmd, hold them")
    socks = []
    t0 = time.monotonic()
    for i in range(CONNS):
        if H1:
            sock, status, _, body = harness.proxy_connect(m.port, f"h{i % 4}.origin.test",
                                                          w.nginx.h2_port)
            check(status == 200, f"CONNECT answered {status}")
            socks.append(harness.tls_over(sock, f"h{i % 4}.origin.test", m.ca_cert))
            continue
        s = h2lib.h2_raw_connect(m, f"h{i % 4}.origin.test", w.nginx.h2_port)
        s.sendall(PREFACE + frame(FRAME_SETTINGS, 0, 0))
        f = h2lib.FrameReader(s).next(5)
        check(f is not None and f[0] == FRAME_SETTINGS, f"connection {i}: no SETTINGS: {f}")
        socks.append(s)
    took = time.monotonic() - t0
    time.sleep(1.0)
    held = vm_kib(wpid, "VmRSS")
    hwm = vm_kib(wpid, "VmHWM")
    st = h2lib.mitmd_stats(m)
    res = {"alpn": "http/1.1" if H1 else "h2", "conns": CONNS, "open_s": round(took, 2),
           "worker_pid": wpid,
           "worker_rss_kib_before": base, "worker_rss_kib_held": held,
           "worker_hwm_kib": hwm, "per_conn_kib": round((held - base) / CONNS, 1),
           "active": st.get("active")}
    print("RESULT " + json.dumps(res), flush=True)
    check(st.get("active", 0) >= CONNS, f"mitmd reports {st.get('active')} active connections")
    for s in socks:
        s.close()
    warm.close()


if __name__ == "__main__":
    take_conns_arg()
    run(test, __doc__)
