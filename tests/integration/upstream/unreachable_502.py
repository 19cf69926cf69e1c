#!/usr/bin/env python3
"""An upstream port with nothing listening is answered 502 within 2 s: on the CONNECT itself
(eager upstream connect) and for an absolute-form plain HTTP request."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (check, curl, free_port, info, proxy_connect, run,  # noqa: E402
                     standard_setup, step)


def test(env):
    w = standard_setup(env, origin=False)
    dead = free_port()

    step(f"CONNECT www.origin.test:{dead} (nothing listening) -> 502 within 2 s")
    t0 = time.monotonic()
    sock, status, _, body = proxy_connect(w.mitmd.port, "www.origin.test", dead, timeout=5)
    took = time.monotonic() - t0
    sock.close()
    info(f"status {status} after {took:.2f}s, body {body[:200]!r}")
    check(status == 502, f"CONNECT to a closed port answered {status}, expected 502")
    check(took < 2.0, f"502 took {took:.2f}s, expected < 2 s")
    check(body.strip(), "the 502 has no body explaining the failure")

    step(f"curl https://www.origin.test:{dead}/ via the proxy fails fast with 502 on CONNECT")
    t0 = time.monotonic()
    code, _, err = curl(env, w.mitmd.port, f"https://www.origin.test:{dead}/",
                        cafile=w.mitmd.ca_cert, timeout=10)
    took = time.monotonic() - t0
    info(f"curl: {err.strip()!r} after {took:.2f}s")
    check("502" in err or code == 502, f"curl did not report a 502 from the proxy: {err!r}")
    check(took < 2.0, f"took {took:.2f}s")

    step(f"absolute-form GET http://www.origin.test:{dead}/ -> 502 within 2 s")
    t0 = time.monotonic()
    code, body, err = curl(env, w.mitmd.port, f"http://www.origin.test:{dead}/", timeout=10)
    took = time.monotonic() - t0
    check(code == 502, f"plain HTTP to a closed port: HTTP {code} ({err.strip()})")
    check(took < 2.0, f"took {took:.2f}s")

    step("the proxy still works afterwards")
    code, body, err = curl(env, w.mitmd.port, f"https://www.origin.test:{w.nginx.ports['valid']}/1k",
                           cafile=w.mitmd.ca_cert)
    check(code == 200, f"normal request after the failures: HTTP {code} ({err.strip()})")


if __name__ == "__main__":
    run(test, __doc__)
