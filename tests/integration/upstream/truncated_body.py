#!/usr/bin/env python3
"""An upstream that closes before sending its announced Content-Length makes mitmd close the
client connection promptly (the client sees a short body, never a hang or a longer one), the
flow is recorded with an error, and the next connection works."""
import http.client
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, info, run, standard_setup, step  # noqa: E402


def test(env):
    w = standard_setup(env, flows=True)
    step("GET /truncated (Content-Length 100000, 1000 bytes sent, then close)")
    conn = w.mitmd.https_conn("www.origin.test", w.origin.port, timeout=10)
    t0 = time.monotonic()
    conn.request("GET", "/truncated?announce=100000&send=1000")
    resp = conn.getresponse()
    got = b""
    try:
        while True:
            block = resp.read(4096)
            if not block:
                break
            got += block
        short = False
    except http.client.IncompleteRead as e:
        got += e.partial
        short = True
    except (ConnectionError, OSError):
        short = True
    took = time.monotonic() - t0
    info(f"status {resp.status}, {len(got)} bytes, incomplete={short}, after {took:.2f}s")
    check(took < 5, f"the client waited {took:.1f}s: mitmd did not pass on the upstream close")
    check(len(got) <= 1000, f"client got {len(got)} bytes, the origin sent only 1000")
    check(short or len(got) < 100000, "the body looks complete")
    conn.close()

    step("the flow record says the exchange failed")
    w.mitmd.stop()
    with open(w.flows) as f:
        recs = [json.loads(line) for line in f if line.strip()]
    tr = [r for r in recs if "/truncated" in r["request"]["url"]]
    check(len(tr) == 1, f"expected 1 flow record for /truncated, got {len(tr)}")
    info(f"error: {tr[0]['error']!r}, response.bodySize {tr[0]['response']['bodySize']}")
    check(tr[0]["error"], "the truncated exchange has error null")

    step("a new mitmd connection to the same origin still works")
    m2 = env.mitmd(args=["--upstream-ca", w.pki.ca_cert, "--resolve", "*.origin.test=127.0.0.1"],
                   name="mitmd-2")
    conn = m2.https_conn("www.origin.test", w.origin.port)
    conn.request("GET", "/hello")
    r = conn.getresponse()
    check(r.status == 200 and r.read() == b"hello from origin\n", f"after: {r.status}")


if __name__ == "__main__":
    run(test, __doc__)
