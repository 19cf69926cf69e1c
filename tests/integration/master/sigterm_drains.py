#!/usr/bin/env python3
"""SIGTERM drains: a response in flight when the master gets SIGTERM is completed, then the
master and its workers exit (status 0) within 2 s of its end."""
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, info, proc_alive, run, standard_setup, step, wait_until  # noqa
from origin import chunk_bytes  # noqa: E402


def test(env):
    w = standard_setup(env, workers=2)
    m = w.mitmd
    workers = m.wait_workers(2)
    check(workers, f"expected 2 workers, found {m.worker_pids()}")

    step("GET /chunked (2 chunks, 1 s apart) is in flight when SIGTERM arrives")
    result = {}
    first = threading.Event()

    def slow():
        conn = m.https_conn("www.origin.test", w.origin.port, timeout=10)
        try:
            conn.request("GET", "/chunked?chunks=2&size=64&delay=1")
            resp = conn.getresponse()
            result["status"] = resp.status
            body = resp.read1(64)
            first.set()
            while True:
                more = resp.read1(4096)
                if not more:
                    break
                body += more
            result["body"] = body
            result["done"] = time.monotonic()
        except Exception as e:  # reported below
            result["error"] = f"{type(e).__name__}: {e}"
            first.set()
        conn.close()

    t = threading.Thread(target=slow)
    t.start()
    check(first.wait(5), "the first chunk did not arrive")
    t_term = time.monotonic()
    os.kill(m.pid, signal.SIGTERM)
    t.join(10)

    step("the in-flight response completed in full")
    want = b"".join(chunk_bytes(i, 64) for i in range(2))
    check("error" not in result, f"in-flight request failed after SIGTERM: {result.get('error')}")
    check(result.get("body") == want, f"got {len(result.get('body', b''))} of {len(want)} bytes")
    info(f"response finished {result['done'] - t_term:.2f}s after SIGTERM")

    step("master and workers exit (status 0) within 2 s after the response ended")
    rc = m.wait_exit(max(0.1, result["done"] + 2.0 - time.monotonic()))
    check(rc is not None, "master still running 2 s after the last response ended")
    check(rc == 0, f"master exit status {rc}")
    check(wait_until(lambda: not any(proc_alive(p) for p in workers), 1.0),
          f"workers alive: {[p for p in workers if proc_alive(p)]}")
    info(f"all gone {time.monotonic() - t_term:.2f}s after SIGTERM")


if __name__ == "__main__":
    run(test, __doc__)
