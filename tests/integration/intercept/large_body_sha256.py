#!/usr/bin/env python3
"""10 MB bodies pass through mitmd intact in both directions (SHA-256 equality): a GET of a
10 MB random file from nginx, and a 10 MB POST echoed as a digest by the Python origin."""
import hashlib
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, curl, info, run, sha256_bytes, standard_setup, step  # noqa: E402

SIZE = 10 * 1024 * 1024


def test(env):
    big = os.urandom(SIZE)
    want = sha256_bytes(big)
    w = standard_setup(env, files={"10m": big})

    step("GET 10 MB through mitmd with curl: SHA-256 equals the origin file's")
    t0 = time.monotonic()
    code, got, err = curl(env, w.mitmd.port, f"https://www.origin.test:{w.nginx.ports['valid']}/10m",
                          cafile=w.mitmd.ca_cert)
    check(code == 200, f"curl got HTTP {code}: {err.strip()}")
    check(len(got) == SIZE, f"got {len(got)} bytes, expected {SIZE}")
    check(sha256_bytes(got) == want, "SHA-256 of the downloaded 10 MB differs")
    info(f"GET took {time.monotonic() - t0:.2f}s")

    step("GET 10 MB with http.client: SHA-256 equal, Content-Length kept")
    conn = w.mitmd.https_conn("www.origin.test", w.nginx.ports["valid"], timeout=20)
    conn.request("GET", "/10m")
    resp = conn.getresponse()
    h = hashlib.sha256()
    n = 0
    while True:
        block = resp.read(1 << 16)
        if not block:
            break
        h.update(block)
        n += len(block)
    check(resp.status == 200, f"status {resp.status}")
    check(n == SIZE and h.hexdigest() == want, f"http.client got {n} bytes / digest mismatch")
    check(resp.getheader("Content-Length") == str(SIZE),
          f"Content-Length {resp.getheader('Content-Length')!r}, expected {SIZE}")

    conn.close()

    step("POST 10 MB (Content-Length) to the Python origin: its SHA-256 of the body equals ours")
    t0 = time.monotonic()
    conn = w.mitmd.https_conn("api.origin.test", w.origin.port, timeout=20)
    conn.request("POST", "/sha256", body=big, headers={"Content-Type": "application/octet-stream"})
    resp = conn.getresponse()
    data = resp.read()
    check(resp.status == 200, f"POST status {resp.status}: {data[:200]!r}")
    echo = json.loads(data)
    check(echo["length"] == SIZE, f"origin received {echo['length']} bytes, sent {SIZE}")
    check(echo["sha256"] == want, "origin's SHA-256 of the POST body differs from ours")
    info(f"POST took {time.monotonic() - t0:.2f}s")
    conn.close()

    step("POST 10 MB chunked (curl, Transfer-Encoding: chunked, no Expect) arrives intact")
    src = env.path("big.bin")
    with open(src, "wb") as f:
        f.write(big)
    code, got, err = curl(env, w.mitmd.port, f"https://www.origin.test:{w.origin.port}/sha256",
                          cafile=w.mitmd.ca_cert,
                          extra=["-X", "POST", "-H", "Transfer-Encoding: chunked",
                                 "-H", "Expect:", "--data-binary", f"@{src}"])
    check(code == 200, f"chunked POST got HTTP {code}: {err.strip()}")
    echo = json.loads(got)
    check(echo["length"] == SIZE and echo["sha256"] == want,
          f"origin got {echo['length']} bytes / digest mismatch for the chunked POST")

    step("POST 10 MB with curl's default 'Expect: 100-continue': 100 relayed, body intact")
    code, got, err = curl(env, w.mitmd.port, f"https://www.origin.test:{w.origin.port}/sha256",
                          cafile=w.mitmd.ca_cert, extra=["--data-binary", f"@{src}"])
    check(code == 200, f"POST with Expect: 100-continue got HTTP {code}: {err.strip()}")
    echo = json.loads(got)
    check(echo["length"] == SIZE and echo["sha256"] == want,
          f"origin got {echo['length']} bytes / digest mismatch with Expect: 100-continue")


if __name__ == "__main__":
    run(test, __doc__)
