#!/usr/bin/env python3
"""Clients that hang up mid-transfer (10 MB downloads reset, 10 MB uploads cut short) do
not hurt mitmd: no worker dies, and full transfers succeed right after."""
import json
import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (check, curl, info, parse_status, proxy_connect, read_head, run,  # noqa
                     sha256_bytes, standard_setup, step, tls_over)

SIZE = 10 * 1024 * 1024


def test(env):
    big = os.urandom(SIZE)
    w = standard_setup(env, workers=2, files={"10m": big})
    workers = w.mitmd.wait_workers(2)
    check(workers, f"expected 2 workers, found {w.mitmd.worker_pids()}")
    port = w.nginx.ports["valid"]

    step("10 downloads of 10 MB closed after ~200 KB (intercepted)")
    for i in range(10):
        sock, status, _, err = proxy_connect(w.mitmd.port, "www.origin.test", port)
        check(status == 200, f"CONNECT answered {status}: {err[:100]!r}")
        tls = tls_over(sock, "www.origin.test", w.mitmd.ca_cert)
        tls.sendall(b"GET /10m HTTP/1.1\r\nHost: www.origin.test\r\n\r\n")
        head, got = read_head(tls)
        check(parse_status(head)[0] == 200, f"download {i + 1}: {head[:40]!r}")
        while len(got) < 200000:
            got += tls.recv(65536)
        tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        tls.close()  # linger 0: the proxy sees a reset

    step("10 uploads announcing 10 MB closed after 1 MB")
    for i in range(10):
        sock, status, _, err = proxy_connect(w.mitmd.port, "www.origin.test", w.origin.port)
        check(status == 200, f"CONNECT answered {status}: {err[:100]!r}")
        tls = tls_over(sock, "www.origin.test", w.mitmd.ca_cert)
        tls.sendall(f"POST /sha256 HTTP/1.1\r\nHost: www.origin.test\r\n"
                    f"Content-Length: {SIZE}\r\n\r\n".encode() + big[:1 << 20])
        tls.close()

    step("a full 10 MB download and upload succeed afterwards; no worker died")
    code, got, err = curl(env, w.mitmd.port, f"https://www.origin.test:{port}/10m",
                          cafile=w.mitmd.ca_cert)
    check(code == 200 and sha256_bytes(got) == sha256_bytes(big), f"download: HTTP {code} {err}")
    conn = w.mitmd.https_conn("www.origin.test", w.origin.port, timeout=20)
    conn.request("POST", "/sha256", body=big)
    r = conn.getresponse()
    echo = json.loads(r.read())
    check(r.status == 200 and echo["sha256"] == sha256_bytes(big), f"upload: {r.status} {echo}")
    now = w.mitmd.worker_pids()
    info(f"workers {workers} -> {now}")
    check(sorted(now) == sorted(workers), f"worker pids changed from {workers} to {now}")


if __name__ == "__main__":
    run(test, __doc__)
