#!/usr/bin/env python3
"""A CONNECT or absolute-form target that is mitmd's own listener is refused with 502 and
Proxy-Status error=proxy_loop_detected, instead of looping (each hop opening two more
connections); mitmd keeps serving."""
import http.client
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, curl, info, proxy_connect, run, standard_setup, step  # noqa: E402


def test(env):
    w = standard_setup(env, origin=False)
    me = w.mitmd.port

    for host in ("127.0.0.1", "localhost"):
        step(f"CONNECT {host}:{me} (mitmd itself) -> 502 proxy_loop_detected")
        sock, status, head, body = proxy_connect(me, host, me, timeout=5)
        sock.close()
        info(f"{status} {body[:120]!r}")
        check(status == 502, f"CONNECT to itself answered {status}")
        check(b"loop" in body, f"502 body does not say loop: {body!r}")
        check("error=proxy_loop_detected" in head.get("proxy-status", ""),
              f"Proxy-Status: {head.get('proxy-status')!r}")

    step(f"GET http://127.0.0.1:{me}/ through itself -> 502 with Proxy-Status")
    conn = http.client.HTTPConnection("127.0.0.1", me, timeout=5)
    conn.request("GET", f"http://127.0.0.1:{me}/x")
    resp = conn.getresponse()
    resp.read()
    ps = resp.getheader("Proxy-Status", "")
    check(resp.status == 502 and "error=proxy_loop_detected" in ps,
          f"absolute-form to itself: {resp.status}, Proxy-Status {ps!r}")
    conn.close()

    step("mitmd still serves a normal request")
    code, got, err = curl(env, me, f"https://www.origin.test:{w.nginx.ports['valid']}/1k",
                          cafile=w.mitmd.ca_cert)
    check(code == 200 and len(got) == 1024, f"HTTP {code}: {err.strip()}")


if __name__ == "__main__":
    run(test, __doc__)
