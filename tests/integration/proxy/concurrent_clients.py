#!/usr/bin/env python3
"""200 concurrent clients (threads, http.client over CONNECT, each its own TLS connection)
all get the right body through mitmd with 2 workers."""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (check, https_via_proxy, info, run, sha256_bytes,  # noqa: E402
                     standard_setup, step)

CLIENTS = 200


def test(env):
    body = os.urandom(1024)
    want = sha256_bytes(body)
    w = standard_setup(env, workers=2, files={"1k": body}, origin=False)
    workers = w.mitmd.wait_workers(2)
    check(workers, f"expected 2 workers, found {w.mitmd.worker_pids()}")
    port = w.nginx.ports["valid"]
    results = [None] * CLIENTS
    start = threading.Barrier(CLIENTS)

    def client(i):
        try:
            start.wait(20)
            conn = https_via_proxy(w.mitmd.port, f"c{i % 20}.origin.test", port,
                                   w.mitmd.ca_cert, timeout=20)
            for _ in range(2):
                conn.request("GET", "/1k")
                resp = conn.getresponse()
                data = resp.read()
                if resp.status != 200 or sha256_bytes(data) != want:
                    results[i] = f"status {resp.status}, {len(data)} bytes"
                    return
            conn.close()
            results[i] = "ok"
        except Exception as e:  # reported below, per client
            results[i] = f"{type(e).__name__}: {e}"

    step(f"{CLIENTS} threads x 2 keep-alive GETs, 20 distinct host names, all at once")
    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    took = time.monotonic() - t0
    failed = [(i, r) for i, r in enumerate(results) if r != "ok"]
    info(f"{CLIENTS - len(failed)}/{CLIENTS} succeeded in {took:.2f}s")
    check(not failed, f"{len(failed)} clients failed, e.g. {failed[:5]}")
    step("both workers are still the original ones (none died under load)")
    now = w.mitmd.worker_pids()
    check(sorted(now) == sorted(workers), f"worker pids changed from {workers} to {now}")


if __name__ == "__main__":
    run(test, __doc__)
