#!/usr/bin/env python3
"""Hop-by-hop fields stay on their hop (RFC 9110 §7.6.1): a field named in the client's
Connection (X-Secret), Keep-Alive, TE, Proxy-Authorization and Proxy-Connection do not reach
the origin through an intercepted connection, and the origin's own hop fields (Connection:
X-Internal, X-Internal, Keep-Alive) do not reach the client; ordinary fields pass both ways
and the connection stays usable."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (check, info, parse_status, proxy_connect, read_head, run,  # noqa: E402
                     standard_setup, step, tls_over)


def read_response(tls):
    head, rest = read_head(tls)
    code, _, hdrs = parse_status(head)
    body = rest
    while len(body) < int(hdrs.get("content-length", "0")):
        body += tls.recv(65536)
    return code, head, body


def test(env):
    w = standard_setup(env)
    port = w.origin.port

    step("CONNECT + TLS, then a request with Connection: X-Secret and other hop fields")
    sock, status, _, err = proxy_connect(w.mitmd.port, "api.origin.test", port)
    check(status == 200, f"CONNECT answered {status}: {err[:100]!r}")
    tls = tls_over(sock, "api.origin.test", w.mitmd.ca_cert)
    tls.settimeout(10)
    tls.sendall(b"GET /headers?hop=1 HTTP/1.1\r\nHost: api.origin.test\r\n"
                b"Connection: X-Secret, keep-alive\r\nX-Secret: do-not-forward\r\n"
                b"Keep-Alive: timeout=30\r\nTE: trailers\r\nProxy-Authorization: Basic eDp5\r\n"
                b"Proxy-Connection: keep-alive\r\nX-Ordinary: yes\r\n\r\n")
    code, head, body = read_response(tls)
    check(code == 200, f"HTTP {code}")
    got = {k.lower(): v for k, v in json.loads(body)}
    info(f"origin received: {sorted(got)}")
    for name in ("x-secret", "keep-alive", "te", "proxy-authorization", "proxy-connection"):
        check(name not in got, f"{name} reached the origin: {got.get(name)!r}")
    check(got.get("connection", "") in ("", "keep-alive"),
          f"the client's Connection reached the origin: {got.get('connection')!r}")
    check(got.get("x-ordinary") == "yes", f"an ordinary field was dropped: {got}")

    step("the origin's hop fields do not reach the client")
    text = head.decode("latin-1").lower()
    check("x-internal" not in text, f"X-Internal or Connection: X-Internal reached the client:\n{text}")
    check("keep-alive: timeout" not in text, f"the origin's Keep-Alive reached the client:\n{text}")
    check("content-type: application/json" in text, f"ordinary response field missing:\n{text}")

    step("the same connection serves a second request (keep-alive kept)")
    tls.sendall(b"GET /headers HTTP/1.1\r\nHost: api.origin.test\r\n\r\n")
    code, _, body = read_response(tls)
    check(code == 200 and json.loads(body), f"second request: HTTP {code}")
    tls.close()


if __name__ == "__main__":
    run(test, __doc__)
