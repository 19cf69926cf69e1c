#!/usr/bin/env python3
"""With a tiny certificate cache (--cert-cache-mb 1 = 128 slots) and 400 distinct host names
over 2 workers, every client still gets a certificate valid for its own name (verified with
hostname checking) and its response: eviction never serves another name's certificate."""
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (check, https_via_proxy, info, run, standard_setup,  # noqa: E402
                     step)

HOSTS, THREADS = 400, 8


def test(env):
    body = os.urandom(512)
    w = standard_setup(env, workers=2, files={"1k": body}, origin=False,
                       extra_args=["--cert-cache-mb", "1"])
    port = w.nginx.ports["valid"]
    errors = []

    def worker(names):
        for host in names:
            try:
                conn = https_via_proxy(w.mitmd.port, host, port, w.mitmd.ca_cert, timeout=15)
                conn.request("GET", "/1k")  # TLS verification includes the host name
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                if resp.status != 200 or data != body:
                    errors.append(f"{host}: status {resp.status}, {len(data)} bytes")
            except Exception as e:  # collected and reported below
                errors.append(f"{host}: {type(e).__name__}: {e}")

    def sweep(hosts):
        parts = [hosts[i::THREADS] for i in range(THREADS)]
        threads = [threading.Thread(target=worker, args=(p,)) for p in parts]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        return time.monotonic() - t0

    hosts = [f"h{i}.origin.test" for i in range(HOSTS)]
    step(f"{HOSTS} distinct names, {THREADS} clients at a time: each cert verifies for its name")
    took = sweep(hosts)
    info(f"{HOSTS} connections in {took:.1f}s, {len(errors)} errors")
    check(not errors, f"{len(errors)} failures, e.g. {errors[:3]}")

    step("the first 100 names again (long evicted): still the right certificate each")
    took = sweep(hosts[:100])
    check(not errors, f"{len(errors)} failures on the second pass, e.g. {errors[:3]}")

    w.mitmd.stop()
    m = re.search(r"forges=(\d+).*cache_evictions=(\d+)", w.mitmd.stderr())
    if m:
        info(f"master stats: forges={m.group(1)} evictions={m.group(2)}")
        check(int(m.group(2)) > 0, "no evictions with 500 names in 128 slots: is the cache "
              "bounded by --cert-cache-mb?")


if __name__ == "__main__":
    run(test, __doc__)
