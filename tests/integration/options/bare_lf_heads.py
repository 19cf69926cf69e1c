#!/usr/bin/env python3
"""Bare LF line ends (issue 15 item 11, RFC 9112 §2.2): testssl.sh's `CONNECT host:port
HTTP/1.0\\n\\n` opens a tunnel that is then intercepted, and an LF-only absolute-form request
is relayed (its head rebuilt with CRLF); a lone CR is still a 400."""
import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (check, info, parse_status, read_head, read_http_response,  # noqa: E402
                     recv_all, run, standard_setup, step, tls_over)


def test(env):
    body = os.urandom(1024)
    w = standard_setup(env, origin=False, files={"1k": body})
    port = w.nginx.ports["valid"]

    step("testssl.sh's CONNECT with LF-only line ends -> 200, then intercepted HTTPS works")
    sock = socket.create_connection(("127.0.0.1", w.mitmd.port), timeout=10)
    sock.sendall(f"CONNECT www.origin.test:{port} HTTP/1.0\n\n".encode())
    head, rest = read_head(sock)
    info(f"answer: {head[:60]!r}")
    check(head and parse_status(head)[0] == 200, f"LF-only CONNECT answered {head[:80]!r}")
    check(rest == b"", "bytes after the 200")
    tls = tls_over(sock, "www.origin.test", cafile=w.mitmd.ca_cert)
    tls.sendall(b"GET /1k HTTP/1.1\r\nHost: www.origin.test\r\nConnection: close\r\n\r\n")
    status, _, got = read_http_response(tls)
    check(status == 200 and got == body, f"GET through the LF-opened tunnel: {status}")
    tls.close()

    step("an LF-only absolute-form GET in the clear is relayed to the origin")
    plain = w.nginx.plain_port
    sock = socket.create_connection(("127.0.0.1", w.mitmd.port), timeout=10)
    sock.sendall(f"GET http://www.origin.test:{plain}/1k HTTP/1.1\nHost: www.origin.test:"
                 f"{plain}\nConnection: close\n\n".encode())
    data = recv_all(sock)
    sock.close()
    info(f"answer: {data[:60]!r}")
    check(data.startswith(b"HTTP/1.1 200") and data.endswith(body),
          f"LF-only absolute-form GET: {data[:120]!r}")

    step("a lone CR in a head is still refused with 400")
    sock = socket.create_connection(("127.0.0.1", w.mitmd.port), timeout=10)
    sock.sendall(f"CONNECT www.origin.test:{port} HTTP/1.1\rHost: x\r\n\r\n".encode())
    data = recv_all(sock, timeout=5)
    sock.close()
    check(data.startswith(b"HTTP/1.1 400"), f"bare CR answered {data[:80]!r}")


if __name__ == "__main__":
    run(test, __doc__)
