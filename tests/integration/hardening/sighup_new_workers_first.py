#!/usr/bin/env python3
"""Graceful reload, master side (issue 10): on SIGHUP the master starts the new worker
first and only then tells the old one to drain, so that for a moment both run and new
requests are served by the new one while the old one finishes its response in flight; the
old one then exits (logged as info). Counters stay monotonic: the flows of the replaced
workers are still counted in the SIGUSR1 statistics after the reload."""
import os
import re
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, curl, info, proc_alive, run, standard_setup, step, wait_until  # noqa: E402
from origin import chunk_bytes  # noqa: E402

STATS_RE = re.compile(r"stats: accepted=(\d+) active=\d+ flows=(\d+)")


def last_stats(m):
    """last_stats sends SIGUSR1 and returns (accepted, flows) of the new stats line."""
    seen = len(STATS_RE.findall(m.stderr()))
    os.kill(m.pid, signal.SIGUSR1)
    got = wait_until(lambda: len(STATS_RE.findall(m.stderr())) > seen, 5)
    check(got, "no stats line after SIGUSR1")
    a, f = STATS_RE.findall(m.stderr())[-1]
    return int(a), int(f)


def stats_reach(m, accepted, flows, timeout=10):
    """stats_reach asks for statistics (SIGUSR1) until they count at least `accepted` and
    `flows`, as the workers report on a 1 s tick that a loaded machine may delay; returns the
    last (accepted, flows)."""
    deadline = time.monotonic() + timeout
    while True:
        a, f = last_stats(m)
        if (a >= accepted and f >= flows) or time.monotonic() > deadline:
            return a, f
        time.sleep(0.3)


def test(env):
    w = standard_setup(env, workers=1)
    m = w.mitmd
    old = m.wait_workers(1)
    check(old, f"expected 1 worker, found {m.worker_pids()}")
    url = f"https://www.origin.test:{w.nginx.ports['valid']}/1k"
    for i in range(3):
        code, _, err = curl(env, m.port, url, cafile=m.ca_cert)
        check(code == 200, f"request {i + 1}: HTTP {code} {err}")
    acc0, flows0 = stats_reach(m, 3, 3)
    info(f"before the reload: accepted={acc0} flows={flows0}")
    check(flows0 >= 3, f"flows={flows0} before the reload, want >= 3")

    step("a slow response (3 chunks, 1 s apart) is in flight when SIGHUP arrives")
    result = {}

    def slow():
        conn = m.https_conn("www.origin.test", w.origin.port, timeout=20)
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

    step("the new worker runs while the old one is still alive (started first)")
    both = wait_until(lambda: [p for p in m.worker_pids() if p not in old] if
                      proc_alive(old[0]) else None, 3, interval=0.01)
    check(both, f"no moment with the new worker and the old one alive: {m.worker_pids()}")
    info(f"old {old[0]} alive, new {both}")

    step("a request during the drain is served")
    code, _, err = curl(env, m.port, url, cafile=m.ca_cert)
    check(code == 200, f"request during the drain: HTTP {code} {err}")

    step("the in-flight response completes; the old worker exits, logged as info")
    t.join(20)
    want = b"".join(chunk_bytes(i, 64) for i in range(3))
    check("error" not in result, f"in-flight request failed: {result.get('error')}")
    check(result.get("status") == 200 and result.get("body") == want,
          f"in-flight response: status {result.get('status')}, "
          f"{len(result.get('body', b''))} of {len(want)} bytes")
    gone = wait_until(lambda: not proc_alive(old[0]), 10)
    check(gone, f"old worker {old[0]} still running 10 s after its response completed")
    check(wait_until(lambda: re.search(rf"worker 0 \(pid {old[0]}\) replaced", m.stderr()), 3),
          "no 'replaced' info line for the old worker")

    step("statistics after the reload still count the replaced worker's flows")
    acc1, flows1 = stats_reach(m, acc0 + 2, flows0 + 2)
    info(f"after the reload: accepted={acc1} flows={flows1}")
    check(flows1 >= flows0 + 2 and acc1 >= acc0 + 2,
          f"counters went back or lost flows: flows {flows0} -> {flows1}, "
          f"accepted {acc0} -> {acc1} (want +2 at least)")


if __name__ == "__main__":
    run(test, __doc__)
