#!/usr/bin/env python3
"""SIGTERM drains (the master waits for its workers to finish what is in flight, bounded by
--shutdown-timeout); a second SIGTERM stops at once (issue 10 'Graceful reload and stop'):
with a slow response in flight, SIGTERM then SIGTERM again 0.3 s later ends the master and
its workers within 1 s of the first signal, well before the worker's own drain would."""
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, info, proc_alive, run, standard_setup, step, wait_until  # noqa: E402


def test(env):
    w = standard_setup(env, workers=1)
    m = w.mitmd
    workers = m.wait_workers(1)
    check(workers, f"expected 1 worker, found {m.worker_pids()}")
    started = threading.Event()

    def slow():
        conn = m.https_conn("www.origin.test", w.origin.port, timeout=20)
        try:
            conn.request("GET", "/chunked?chunks=10&size=64&delay=1")
            resp = conn.getresponse()
            started.set()
            resp.read()
        except Exception:  # cut by the stop: expected
            pass
        finally:
            started.set()
            conn.close()

    t = threading.Thread(target=slow, daemon=True)
    t.start()
    check(started.wait(10), "the slow response did not start")

    step("SIGTERM, then SIGTERM again 0.3 s later: everything ends within 1 s")
    t0 = time.monotonic()
    os.kill(m.pid, signal.SIGTERM)
    time.sleep(0.3)
    os.kill(m.pid, signal.SIGTERM)
    rc = m.wait_exit(5)
    took = time.monotonic() - t0
    info(f"master exit {rc} {took:.2f}s after the first SIGTERM")
    check(rc is not None, "master still running 5 s after two SIGTERMs")
    check(took < 1.0, f"master took {took:.2f}s to stop after the second SIGTERM")
    check(wait_until(lambda: not proc_alive(workers[0]), 2), "worker still running")
    check("again: stopping at once" in m.stderr(), "no 'stopping at once' line")


if __name__ == "__main__":
    run(test, __doc__)
