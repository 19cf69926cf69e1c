#!/usr/bin/env python3
"""Connections spread evenly over the workers, whatever their ports hash to: 16 keep-alive
connections opened one after another through mitmd --workers 2 end up 8/8, each answering
200 with the right body. After a worker is killed, new connections go to its fresh
replacement (the least loaded) until it has caught up (at least 5 of the next 8), and they
too are served."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (check, info, kill_pid, run, sha256_bytes, standard_setup,  # noqa: E402
                     step)


def established_by_pid(pids, port):
    """established_by_pid counts, per pid, the ESTABLISHED TCP sockets it holds whose local
    port is `port` (from /proc/net/tcp{,6} and /proc/PID/fd)."""
    inodes = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    local, state, inode = parts[1], parts[3], parts[9]
                    if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
                        inodes[inode] = True
        except OSError:
            pass
    out = {}
    for pid in pids:
        n = 0
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if link.startswith("socket:[") and link[8:-1] in inodes:
                n += 1
        out[pid] = n
    return out


def open_and_get(m, w, body_sha, what):
    conn = m.https_conn("www.origin.test", w.nginx.ports["valid"])
    conn.request("GET", "/1k")
    resp = conn.getresponse()
    data = resp.read()
    check(resp.status == 200, f"{what}: status {resp.status}")
    check(sha256_bytes(data) == body_sha, f"{what}: body SHA-256 differs ({len(data)} bytes)")
    return conn


def test(env):
    body = os.urandom(1024)
    w = standard_setup(env, workers=2, files={"1k": body})
    m = w.mitmd
    m.expect_worker_deaths = True
    want = sha256_bytes(body)
    pids = m.wait_workers(2, timeout=5)
    check(pids is not None, f"expected 2 workers, found {m.worker_pids()}")

    step("16 keep-alive connections, one after another, each GET /1k (200, SHA-256)")
    conns = [open_and_get(m, w, want, f"connection {i + 1}") for i in range(16)]
    counts = established_by_pid(pids, m.port)
    info(f"client connections per worker: {counts}")
    check(sum(counts.values()) == 16, f"workers hold {sum(counts.values())} of the 16 "
          f"client connections: {counts}")
    # One after another they alternate: a worker that took one queues its next accept behind
    # its sibling's (the board would allow 7/9; hashing gives 8/8 one time in five).
    check(sorted(counts.values()) == [8, 8],
          f"connections are not balanced over the 2 workers: {counts}")

    step("kill -9 one worker: its replacement takes the next connections")
    victim = pids[0]
    survivor = pids[1]
    kill_pid(victim, signal.SIGKILL)
    new = m.wait_workers(2, timeout=5, exclude=[victim])
    check(new is not None, f"no replacement worker: {m.worker_pids()}")
    fresh = [p for p in new if p != survivor][0]
    # The process exists before it has set up (HELLO, TLS contexts) and joined the accept
    # board; until then the survivor is the only live worker and keeps accepting.
    time.sleep(1.0)
    more = [open_and_get(m, w, want, f"connection {17 + i}") for i in range(8)]
    counts = established_by_pid([survivor, fresh], m.port)
    info(f"after the restart: {counts}")
    # Ideally 7 or 8 of 8 (the survivor holds 8); a busy machine may let the survivor take
    # one the fresh worker did not pick up within WORKER_ACCEPT_DEFER_MS (by design: no
    # connection waits longer).
    check(counts[fresh] >= 5, f"the fresh worker got {counts[fresh]} of 8 new connections "
          f"(the survivor holds {counts[survivor]})")
    for c in conns + more:
        c.close()


if __name__ == "__main__":
    run(test, __doc__)
