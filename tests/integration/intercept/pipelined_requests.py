#!/usr/bin/env python3
"""Pipelined HTTP/1.1 requests (three heads sent in one write inside the tunnel, and two
after an absolute-form request) are all answered, in order, with the right bodies."""
import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (ResponseReader, check, proxy_connect, read_http_response, run,  # noqa
                     standard_setup, step, tls_over)


def test(env):
    files = {f"f{i}": os.urandom(700 + i * 1000) for i in range(3)}
    w = standard_setup(env, files=files, origin=False)
    port = w.nginx.ports["valid"]

    step("3 pipelined GETs in one TLS write through an intercepted tunnel")
    sock, status, _, err = proxy_connect(w.mitmd.port, "www.origin.test", port)
    check(status == 200, f"CONNECT answered {status}: {err[:100]!r}")
    tls = tls_over(sock, "www.origin.test", w.mitmd.ca_cert)
    tls.settimeout(10)
    tls.sendall(b"".join(f"GET /f{i} HTTP/1.1\r\nHost: www.origin.test\r\n\r\n".encode()
                         for i in range(3)))
    responses = ResponseReader(tls)
    for i in range(3):
        code, _, data = read_http_response(responses)
        check(code == 200, f"pipelined response {i + 1}: {code}")
        check(data == files[f"f{i}"], f"pipelined response {i + 1} has the body of another "
              f"request or is damaged ({len(data)} bytes)")
    tls.close()

    step("3 pipelined absolute-form GETs to a plain-HTTP origin")
    s = socket.create_connection(("127.0.0.1", w.mitmd.port), timeout=10)
    base = f"http://www.origin.test:{w.nginx.plain_port}"
    s.sendall(b"".join(f"GET {base}/f{i} HTTP/1.1\r\nHost: www.origin.test\r\n\r\n".encode()
                       for i in range(3)))
    responses = ResponseReader(s)
    for i in range(3):
        code, _, data = read_http_response(responses)
        check(code == 200 and data == files[f"f{i}"], f"plain pipelined response {i + 1}: "
              f"{code}, {len(data)} bytes")
    s.close()


if __name__ == "__main__":
    run(test, __doc__)
