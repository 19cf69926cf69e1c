#!/usr/bin/env python3
"""sd_notify (systemd Type=notify) without systemd: a Python AF_UNIX datagram socket is
$NOTIFY_SOCKET. READY=1 arrives once the proxy port accepts (a request through it works at
that moment); SIGHUP sends RELOADING=1 with MONOTONIC_USEC (within a second of now), then
READY=1 once the new workers are ready; SIGTERM sends STOPPING=1; every message has STATUS=.
Also an abstract-namespace socket ("@name") gets READY=1."""
import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import LISTEN_RE, check, curl, info, run, standard_setup, step  # noqa: E402


def recv_msg(sock, timeout):
    """recv_msg returns one datagram as {VAR: VALUE}, or None after timeout seconds."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(4096)
    except socket.timeout:
        return None
    return dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)


def wait_msg(sock, var, timeout):
    """wait_msg returns the first message that sets `var` (others are skipped)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = recv_msg(sock, max(0.05, deadline - time.monotonic()))
        if msg is not None and var in msg:
            return msg
    return None


def test(env):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = env.path("notify.sock")
    sock.bind(path)
    env.stack.callback(sock.close)
    os.environ["NOTIFY_SOCKET"] = path
    try:
        w = standard_setup(env, origin=False, workers=2)
    finally:
        del os.environ["NOTIFY_SOCKET"]
    m = w.mitmd
    url = f"https://www.origin.test:{w.nginx.ports['valid']}/1k"

    step("READY=1 arrives with a STATUS; the port accepts at that moment")
    msg = wait_msg(sock, "READY", 10.0)
    check(msg is not None and msg["READY"] == "1", f"no READY=1 (got {msg})")
    check("STATUS" in msg, f"READY without STATUS: {msg}")
    got = LISTEN_RE.search(m.stderr())
    check(got is not None, "READY=1 before the 'listening on' line")
    port = int(got.group(2))
    socket.create_connection(("127.0.0.1", port), timeout=2).close()
    code, _, err = curl(env, port, url, cafile=m.ca_cert)
    check(code == 200, f"request right after READY=1: HTTP {code} {err.strip()}")
    info(f"READY=1, STATUS={msg['STATUS']!r}")

    step("SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1")
    os.kill(m.pid, signal.SIGHUP)
    msg = wait_msg(sock, "RELOADING", 5.0)
    check(msg is not None and msg["RELOADING"] == "1", f"no RELOADING=1 (got {msg})")
    now_us = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    usec = int(msg.get("MONOTONIC_USEC", "0"))
    check(abs(now_us - usec) < 2_000_000, f"MONOTONIC_USEC {usec} vs now {now_us}")
    check("STATUS" in msg, f"RELOADING without STATUS: {msg}")
    msg = wait_msg(sock, "READY", 8.0)
    check(msg is not None and msg["READY"] == "1", f"no READY=1 after the reload (got {msg})")
    code, _, err = curl(env, port, url, cafile=m.ca_cert)
    check(code == 200, f"request after the reload: HTTP {code} {err.strip()}")

    step("SIGTERM: STOPPING=1")
    os.kill(m.pid, signal.SIGTERM)
    msg = wait_msg(sock, "STOPPING", 5.0)
    check(msg is not None and msg["STOPPING"] == "1", f"no STOPPING=1 (got {msg})")
    check(m.wait_exit(10) == 0, "master did not exit 0")

    step("an abstract socket (@name) gets READY=1 too")
    asock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"mitmd-test-{os.getpid()}-{time.monotonic_ns()}"
    asock.bind("\0" + name)
    env.stack.callback(asock.close)
    os.environ["NOTIFY_SOCKET"] = "@" + name
    try:
        m2 = env.mitmd(workers=1, name="mitmd2")
    finally:
        del os.environ["NOTIFY_SOCKET"]
    msg = wait_msg(asock, "READY", 10.0)
    check(msg is not None and msg["READY"] == "1", f"abstract socket: no READY=1 ({msg})")
    m2.stop()


if __name__ == "__main__":
    run(test, __doc__)
