#!/usr/bin/env python3
"""When a worker's pool is nearly full (--max-conns), mitmd closes the least recently active
connections that carry no exchange and have been quiet for at least 1 s (idle keep-alive, or
still waiting for a request head), as nginx reuses its idle connections: a new client is
served instead of answered 503 (issue 10, the slowloris row).

One worker, --max-conns 64: 48 silent connections, 1.5 s of quiet, then 24 more connections
each sending a CONNECT + TLS + GET through the proxy. Every one of the 24 gets its 200 and the
right bytes; the oldest silent connections are the ones closed (not all 48) (they read EOF); the stats line
counts them as reclaimed; nothing was refused."""
import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (check, info, read_head, run, sha256_bytes, standard_setup,  # noqa: E402
                     step, wait_until)


def closed_by_peer(s):
    """closed_by_peer returns whether mitmd closed `s` (EOF or reset), without blocking."""
    s.setblocking(False)
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def test(env):
    body = os.urandom(1024)
    w = standard_setup(env, workers=1, files={"1k": body}, extra_args=["--max-conns", "64"])
    m = w.mitmd
    port = w.nginx.ports["valid"]

    step("48 silent connections (no byte sent), then 1.5 s of quiet")
    silent = [socket.create_connection(("127.0.0.1", m.port), timeout=5) for _ in range(48)]
    time.sleep(1.5)

    step("24 new clients, one after the other, each CONNECT + TLS + GET /1k")
    statuses, bodies = [], []
    live = []
    for i in range(24):
        conn = m.https_conn("www.origin.test", port, timeout=10)
        conn.request("GET", "/1k")
        r = conn.getresponse()
        statuses.append(r.status)
        bodies.append(sha256_bytes(r.read()))
        live.append(conn)  # kept open: the pool fills with them
    info(f"statuses: {sorted(set(statuses))}, {statuses.count(200)} x 200")
    check(statuses.count(200) == 24, f"not every new client got 200: {statuses}")
    check(set(bodies) == {sha256_bytes(body)}, "a body differs from the origin's")

    step("the silent connections were the ones closed, oldest first")
    gone = wait_until(lambda: sum(closed_by_peer(s) for s in silent) or None, 3)
    flags = [closed_by_peer(s) for s in silent]
    n_gone = sum(flags)
    info(f"{n_gone} of 48 silent connections closed by mitmd")
    # 16 at a time whenever fewer than 16 slots are left: 48 + 24 clients in a pool of 64
    check(gone and 16 <= n_gone < 48, f"{n_gone} silent connections were reclaimed")
    check(all(flags[:n_gone]), f"not the oldest first: {flags}")

    step("a fresh client still talks to mitmd while the pool is at its limit")
    raw = socket.create_connection(("127.0.0.1", m.port), timeout=5)
    raw.sendall(f"CONNECT www.origin.test:{port} HTTP/1.1\r\n\r\n".encode())
    head, _ = read_head(raw)
    info(f"answer: {head.splitlines()[0] if head else b'(closed)'}")
    check(head.startswith(b"HTTP/1.1 200"), f"CONNECT answered {head[:60]!r}")
    raw.close()
    for s in silent:
        s.close()
    for c in live:
        c.close()
    m.stop()
    stats = re.findall(r"stats: .*", m.stderr())
    check(stats, "no stats line at exit")
    reclaimed = int(re.search(r"reclaimed=(\d+)", stats[-1]).group(1))
    info(f"reclaimed={reclaimed}")
    check(reclaimed >= n_gone, f"stats say reclaimed={reclaimed}, {n_gone} were closed")


if __name__ == "__main__":
    run(test, __doc__)
