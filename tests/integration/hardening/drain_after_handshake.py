#!/usr/bin/env python3
"""A connection that was between its CONNECT and its TLS handshake when SIGTERM came is drained
like any other: the handshake still completes, its first request is answered (200, the file's
bytes) with "Connection: close", the connection then closes, and the master exits well within
the shutdown timeout. (Before the fix, the HTTP/1.1 protocol that took over after the drain
never heard of it and served the client's keep-alive requests until the 30 s deadline.)"""
import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (ResponseReader, check, info, read_http_response, run, standard_setup,  # noqa
                     step, tls_over)


def test(env):
    body = os.urandom(1024)
    w = standard_setup(env, files={"1k": body}, origin=False)
    m, port = w.mitmd, w.nginx.ports["valid"]

    step("CONNECT www.origin.test, 200; then SIGTERM to the master before the TLS handshake")
    s = socket.create_connection(("127.0.0.1", m.port), timeout=10)
    s.sendall(f"CONNECT www.origin.test:{port} HTTP/1.1\r\nHost: www.origin.test:{port}\r\n\r\n"
              .encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        check(chunk, "mitmd closed the tunnel before answering the CONNECT")
        head += chunk
    check(head.startswith(b"HTTP/1.1 200"), f"CONNECT answer: {head!r}")
    t0 = time.monotonic()
    os.kill(m.pid, signal.SIGTERM)
    time.sleep(0.3)  # the workers take the stop in

    step("the handshake completes; the first request gets 200 with Connection: close")
    tls = tls_over(s, "www.origin.test", m.ca_cert)
    tls.sendall(b"GET /1k HTTP/1.1\r\nHost: www.origin.test\r\n\r\n")
    reader = ResponseReader(tls)
    code, resp, data = read_http_response(reader)
    conn = (resp.getheader("Connection") or "").lower()
    info(f"{code}, Connection: {conn!r}, {len(data)} bytes")
    check(code == 200 and data == body, f"GET /1k after SIGTERM: {code}, {len(data)} bytes")
    check(conn == "close", f"the response says Connection: {conn!r}, want close (draining)")
    tls.settimeout(5)
    try:
        rest = tls.recv(1)
    except (ConnectionError, OSError):
        rest = b""
    check(rest == b"", f"the connection stayed open after Connection: close ({rest!r})")
    tls.close()

    step("the master exits within 5 s of SIGTERM (the shutdown timeout is 30 s)")
    rc = m.wait_exit(max(0.1, 5 - (time.monotonic() - t0)))
    check(rc == 0, f"master exit {rc} (None: still running 5 s after SIGTERM)")


if __name__ == "__main__":
    run(test, __doc__)
