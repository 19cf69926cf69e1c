#!/usr/bin/env python3
"""/healthz answers 200 while the workers serve and 503 during a SIGTERM drain: a slow
response (2 chunks, 1.5 s apart) is in flight when SIGTERM arrives; until it completes the
master still answers /healthz, with 503 "draining"; /metrics shows mitmd_state draining;
then the response completes in full and the master exits 0 (--shutdown-timeout 10)."""
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import check, info, run, standard_setup, step, wait_until  # noqa: E402
from opslib import METRICS_ARGS, http_get, metrics_port, scrape  # noqa: E402
from origin import chunk_bytes  # noqa: E402


def test(env):
    w = standard_setup(env, workers=2, extra_args=METRICS_ARGS + ["--shutdown-timeout", "10"])
    m = w.mitmd
    mport = metrics_port(m)

    step("/healthz: 200 ok while serving")
    status, _, body = http_get(mport, "/healthz")
    check(status == 200 and body == b"ok\n", f"/healthz: {status} {body!r}")

    step("a slow response is in flight when SIGTERM arrives")
    result, first = {}, threading.Event()

    def slow():
        conn = m.https_conn("www.origin.test", w.origin.port, timeout=15)
        try:
            conn.request("GET", "/chunked?chunks=2&size=64&delay=1.5")
            resp = conn.getresponse()
            body = resp.read1(64)
            first.set()
            while True:
                more = resp.read1(4096)
                if not more:
                    break
                body += more
            result["body"] = body
        except Exception as e:  # reported below
            result["error"] = f"{type(e).__name__}: {e}"
            first.set()
        conn.close()

    t = threading.Thread(target=slow)
    t.start()
    check(first.wait(5), "the first chunk did not arrive")
    os.kill(m.pid, signal.SIGTERM)
    t_term = time.monotonic()

    step("/healthz: 503 draining while the response is still in flight")
    got = wait_until(lambda: (lambda r: r if r[0] == 503 else None)(http_get(mport, "/healthz")),
                     1.0, interval=0.05)
    check(got is not None, "/healthz did not turn 503 within 1 s of SIGTERM")
    check(got[2] == b"draining\n", f"/healthz body {got[2]!r}")
    check(t.is_alive(), "the slow response ended before /healthz was checked")
    samples, _ = scrape(mport)
    check(samples.get(("mitmd_state", '{state="draining"}')) == 1, "mitmd_state not draining")
    info(f"/healthz 503 {time.monotonic() - t_term:.2f}s after SIGTERM, response still running")

    step("the in-flight response completes in full; the master exits 0")
    t.join(10)
    want = b"".join(chunk_bytes(i, 64) for i in range(2))
    check("error" not in result, f"in-flight request failed: {result.get('error')}")
    check(result.get("body") == want, "in-flight response incomplete")
    rc = m.wait_exit(5)
    check(rc == 0, f"master exit status {rc}")


if __name__ == "__main__":
    run(test, __doc__)
