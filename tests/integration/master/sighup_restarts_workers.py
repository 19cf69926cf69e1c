#!/usr/bin/env python3
"""SIGHUP replaces every worker (new pids, same master, same count) without losing the
listener: requests succeed right after, and a response in flight during the reload
completes (graceful drain)."""
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, curl, info, run, standard_setup, step  # noqa: E402
from origin import chunk_bytes  # noqa: E402


def test(env):
    w = standard_setup(env, workers=2)
    m = w.mitmd
    old = m.wait_workers(2)
    check(old, f"expected 2 workers, found {m.worker_pids()}")
    url = f"https://www.origin.test:{w.nginx.ports['valid']}/1k"
    code, _, err = curl(env, m.port, url, cafile=m.ca_cert)
    check(code == 200, f"before SIGHUP: HTTP {code} {err}")

    step("a slow response (3 chunks, 1 s apart) is in flight while SIGHUP arrives")
    result = {}

    def slow():
        conn = m.https_conn("www.origin.test", w.origin.port, timeout=15)
        try:
            conn.request("GET", "/chunked?chunks=3&size=64&delay=1")
            resp = conn.getresponse()
            result["status"] = resp.status
            result["body"] = resp.read()
        except Exception as e:  # reported below
            result["error"] = f"{type(e).__name__}: {e}"
        conn.close()

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.5)
    os.kill(m.pid, signal.SIGHUP)
    t0 = time.monotonic()

    step("2 new workers appear, none of the old pids, master unchanged")
    new = m.wait_workers(2, timeout=5, exclude=old)
    check(new is not None, f"workers after SIGHUP: {m.worker_pids()} (old {old})")
    info(f"workers {old} -> {new} in {time.monotonic() - t0:.2f}s")
    check(m.proc.poll() is None, "the master exited on SIGHUP")

    step("requests succeed right after the reload")
    for i in range(5):
        code, _, err = curl(env, m.port, url, cafile=m.ca_cert)
        check(code == 200, f"request {i + 1} after SIGHUP: HTTP {code} {err}")

    step("the response in flight during SIGHUP completed in full")
    t.join(20)
    want = b"".join(chunk_bytes(i, 64) for i in range(3))
    check("error" not in result, f"in-flight request failed: {result.get('error')}")
    check(result.get("status") == 200 and result.get("body") == want,
          f"in-flight response: status {result.get('status')}, "
          f"{len(result.get('body', b''))} of {len(want)} bytes")


if __name__ == "__main__":
    run(test, __doc__)
