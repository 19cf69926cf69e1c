#!/usr/bin/env python3
"""An idle keep-alive connection is reused after mitmd gave its buffer pages back to the
kernel (conn_trim, after CONN_TRIM_IDLE_MS of quiet): a 100 KiB response, 2.5 s idle, the
same again, 2.5 s idle, then a 1 KiB response, all on one client connection (http.client
over CONNECT, HTTP/1.1), arrive intact (SHA-256) and the connection stays kept alive."""
import hashlib
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, info, run, standard_setup, step  # noqa: E402


def sha(b):
    return hashlib.sha256(b).hexdigest()


def test(env):
    big, small = os.urandom(100 * 1024), os.urandom(1024)
    w = standard_setup(env, files={"100k": big, "1k": small})
    port = w.nginx.ports["valid"]
    conn = w.mitmd.https_conn("www.origin.test", port)
    for i, (path, want) in enumerate([("/100k", big), ("/100k", big), ("/1k", small)]):
        if i > 0:
            step("idle 2.5 s on the kept-alive connection (its buffers are trimmed after 1 s)")
            time.sleep(2.5)
        step(f"GET {path} on the same connection -> 200 and the file's SHA-256")
        conn.request("GET", path)
        resp = conn.getresponse()
        got = resp.read()
        check(resp.status == 200, f"request {i + 1}: status {resp.status}")
        check(sha(got) == sha(want), f"request {i + 1}: body {len(got)} bytes, SHA-256 differs")
        check(not resp.will_close, f"request {i + 1}: the proxy asked to close the connection")
        info(f"request {i + 1}: {len(got)} bytes intact")
    conn.close()


if __name__ == "__main__":
    run(test, __doc__)
