#!/usr/bin/env python3
"""Plain HTTP: an absolute-form GET (curl -x to an http:// origin) is relayed; an origin-form
request sent to the proxy itself gets 400 mentioning the proxy."""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (check, curl, info, parse_status, proxy_connect, read_head,  # noqa
                     read_http_response, run, standard_setup, step, wait_until)
import http.client  # noqa: E402
import socket  # noqa: E402


def test(env):
    body = os.urandom(1024)
    w = standard_setup(env, files={"1k": body}, origin=False)
    url = f"http://www.origin.test:{w.nginx.plain_port}/1k"

    step(f"curl -x mitmd {url} -> 200 with the file")
    code, got, err = curl(env, w.mitmd.port, url)
    check(code == 200, f"HTTP {code}: {err.strip()}")
    check(got == body, f"body differs ({len(got)} bytes)")

    step("three absolute-form requests on one client connection (keep-alive) all succeed")
    conn = http.client.HTTPConnection("127.0.0.1", w.mitmd.port, timeout=10)
    for i in range(3):
        conn.request("GET", url)
        resp = conn.getresponse()
        got = resp.read()
        check(resp.status == 200 and got == body, f"request {i + 1}: {resp.status}, "
              f"{len(got)} bytes")
        check(not resp.will_close, f"request {i + 1}: the proxy closed a keep-alive connection")
    conn.close()

    step("plain HTTP inside a CONNECT tunnel (first bytes not TLS) is relayed as HTTP")
    sock, status, _, err = proxy_connect(w.mitmd.port, "www.origin.test", w.nginx.plain_port)
    check(status == 200, f"CONNECT to the plain port answered {status}: {err[:100]!r}")
    sock.sendall(b"GET /1k HTTP/1.1\r\nHost: www.origin.test\r\nConnection: close\r\n\r\n")
    code, _, got = read_http_response(sock)
    check(code == 200 and got == body, f"HTTP in a tunnel: {code}, {len(got)} bytes")
    sock.close()

    step("a flow line shows the plain http:// exchange")
    pat = re.compile(r"GET http://www\.origin\.test:%d/1k HTTP/1\.1 << 200" % w.nginx.plain_port)
    check(wait_until(lambda: pat.search(w.mitmd.stdout()), 3),
          f"no flow line for {url} on stdout:\n{w.mitmd.stdout()}")

    step("origin-form 'GET /1k' sent to the proxy -> 400 whose body mentions the proxy")
    s = socket.create_connection(("127.0.0.1", w.mitmd.port), timeout=5)
    s.sendall(f"GET /1k HTTP/1.1\r\nHost: 127.0.0.1:{w.mitmd.port}\r\n\r\n".encode())
    head, rest = read_head(s)
    check(head, "the proxy closed without answering an origin-form request")
    code, _, hdrs = parse_status(head)
    n = int(hdrs.get("content-length", "0"))
    while len(rest) < n:
        data = s.recv(65536)
        if not data:
            break
        rest += data
    s.close()
    info(f"{code}, body {rest[:200]!r}")
    check(code == 400, f"origin-form request answered {code}, expected 400")
    check(re.search(rb"proxy", rest, re.I), f"the 400 body does not mention the proxy: {rest!r}")


if __name__ == "__main__":
    run(test, __doc__)
