#!/usr/bin/env python3
"""Responses without a body (HEAD with Content-Length, 204, 304) are relayed without waiting
for a body, and the keep-alive connection stays usable for the next request."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, info, run, standard_setup, step  # noqa: E402


def test(env):
    body = os.urandom(1024)
    w = standard_setup(env, files={"1k": body})
    port = w.nginx.ports["valid"]

    conn = w.mitmd.https_conn("www.origin.test", port, timeout=5)
    step("HEAD /1k (nginx: Content-Length 1024, no body) answers at once, then GET works")
    t0 = time.monotonic()
    conn.request("HEAD", "/1k")
    resp = conn.getresponse()
    data = resp.read()
    check(resp.status == 200 and data == b"", f"HEAD: {resp.status}, {len(data)} body bytes")
    check(resp.getheader("Content-Length") == "1024",
          f"HEAD Content-Length {resp.getheader('Content-Length')!r}, expected 1024")
    etag = resp.getheader("ETag")
    conn.request("GET", "/1k")
    resp = conn.getresponse()
    check(resp.status == 200 and resp.read() == body, f"GET after HEAD: {resp.status}")
    info(f"HEAD + GET took {time.monotonic() - t0:.2f}s")

    step("conditional GET (If-None-Match) -> 304 with no body, then GET works")
    check(etag, "nginx sent no ETag")
    conn.request("GET", "/1k", headers={"If-None-Match": etag})
    resp = conn.getresponse()
    check(resp.status == 304 and resp.read() == b"", f"conditional GET: {resp.status}")
    conn.request("GET", "/1k")
    resp = conn.getresponse()
    check(resp.status == 200 and resp.read() == body, f"GET after 304: {resp.status}")
    conn.close()

    step("204 No Content from the Python origin, then a request on the same connection")
    conn = w.mitmd.https_conn("api.origin.test", w.origin.port, timeout=5)
    conn.request("GET", "/status?code=204")
    resp = conn.getresponse()
    check(resp.status == 204 and resp.read() == b"", f"204: {resp.status}")
    conn.request("GET", "/hello")
    resp = conn.getresponse()
    check(resp.status == 200 and resp.read() == b"hello from origin\n", f"after 204: {resp.status}")
    conn.close()


if __name__ == "__main__":
    run(test, __doc__)
