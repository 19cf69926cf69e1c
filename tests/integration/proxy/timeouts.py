#!/usr/bin/env python3
"""Timeouts: a request head trickled slower than --request-timeout (slowloris) is answered
408 (with Proxy-Status) and closed; a connection that sends nothing, and an idle keep-alive connection, are closed
after --idle-timeout; a slow upstream inside the limits is not cut off."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (check, curl, info, proxy_connect, read_head, parse_status,  # noqa: E402
                     run, standard_setup, step, tls_over)

REQ_T, IDLE_T = 2, 3


def wait_closed(sock, limit):
    """wait_closed returns (seconds until the proxy closed, bytes it sent), or (None, data)
    if it is still open after limit seconds."""
    t0 = time.monotonic()
    sock.settimeout(0.2)
    out = b""
    while time.monotonic() - t0 < limit:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, OSError):
            return time.monotonic() - t0, out
        if not data:
            return time.monotonic() - t0, out
        out += data
    return None, out


def test(env):
    w = standard_setup(env, extra_args=["--request-timeout", str(REQ_T),
                                        "--idle-timeout", str(IDLE_T)])
    port = w.nginx.ports["valid"]

    step(f"slowloris: one header byte every 0.5 s -> 408 and close after ~{REQ_T} s")
    s = socket.create_connection(("127.0.0.1", w.mitmd.port), timeout=5)
    head = f"GET http://www.origin.test:{w.nginx.plain_port}/1k HTTP/1.1\r\nX-Slow: ".encode()
    s.sendall(head)
    t0 = time.monotonic()
    closed = None
    answer = b""
    while time.monotonic() - t0 < REQ_T + 5:
        try:
            s.sendall(b"a")
        except OSError:
            pass  # the proxy closed after its answer: read what it sent
        s.settimeout(0.5)
        try:
            data = s.recv(65536)
            closed = time.monotonic() - t0
            answer = data
            info(f"answer after {closed:.1f}s: {data[:40]!r}")
            break
        except socket.timeout:
            pass
        except OSError:
            closed = time.monotonic() - t0
            break
    s.close()
    check(closed is not None, f"the slow head was still open after {REQ_T + 5} s "
          f"(--request-timeout {REQ_T})")
    check(closed >= REQ_T - 0.5, f"closed after {closed:.1f}s, before --request-timeout {REQ_T}")
    check(answer.startswith(b"HTTP/1.1 408 "), f"slow head answered {answer[:60]!r}, expected 408")
    check(b"\r\nProxy-Status: mitmd; error=http_request_error" in answer,
          f"408 without Proxy-Status: {answer[:300]!r}")

    step(f"a client connection that sends nothing is closed within ~{max(REQ_T, IDLE_T)} s")
    s = socket.create_connection(("127.0.0.1", w.mitmd.port), timeout=5)
    took, data = wait_closed(s, max(REQ_T, IDLE_T) + 4)
    s.close()
    check(took is not None, "a silent connection is still open")
    info(f"closed after {took:.1f}s, sent {data[:40]!r}")
    check(data == b"", f"a connection that sent nothing got an answer: {data[:60]!r}")

    step(f"an idle intercepted keep-alive connection is closed after ~{IDLE_T} s")
    sock, status, _, err = proxy_connect(w.mitmd.port, "www.origin.test", port)
    check(status == 200, f"CONNECT answered {status}: {err[:100]!r}")
    tls = tls_over(sock, "www.origin.test", w.mitmd.ca_cert)
    tls.sendall(b"GET /1k HTTP/1.1\r\nHost: www.origin.test\r\n\r\n")
    tls.settimeout(5)
    h, rest = read_head(tls)
    code, _, hdrs = parse_status(h)
    check(code == 200, f"first request: {code}")
    body = rest
    while len(body) < int(hdrs["content-length"]):
        body += tls.recv(65536)
    t0 = time.monotonic()
    took, data = wait_closed(tls, IDLE_T + 5)
    check(took is not None, f"idle keep-alive connection still open {IDLE_T + 5}s later")
    info(f"idle connection closed after {took:.1f}s")
    check(took >= IDLE_T - 1.0, f"closed after {took:.1f}s, before --idle-timeout {IDLE_T}")

    step(f"a response that takes 2 x 1 s (chunks) is not cut by --request-timeout {REQ_T}")
    code, got, err = curl(env, w.mitmd.port,
                          f"https://www.origin.test:{w.origin.port}/chunked?chunks=3&delay=1",
                          cafile=w.mitmd.ca_cert)
    check(code == 200 and got.count(b"chunk ") == 3, f"slow response: HTTP {code}, {err.strip()}")


if __name__ == "__main__":
    run(test, __doc__)
