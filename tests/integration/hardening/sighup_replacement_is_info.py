#!/usr/bin/env python3
"""SIGHUP replaces the workers as planned: the master logs each replacement as info
("worker N (pid P) replaced"), never as an error with a restart backoff (issue 10: 'error:
worker 0 ... exited with status 0; restarting in 100 ms'), and serves right after."""
import os
import re
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, curl, info, run, standard_setup, step, wait_until  # noqa: E402


def test(env):
    w = standard_setup(env, workers=2)
    m = w.mitmd
    old = m.wait_workers(2)
    check(old, f"expected 2 workers, found {m.worker_pids()}")
    url = f"https://www.origin.test:{w.nginx.ports['valid']}/1k"

    for round_ in range(2):
        step(f"SIGHUP #{round_ + 1}: new workers, replacement logged as info")
        os.kill(m.pid, signal.SIGHUP)
        new = m.wait_workers(2, timeout=10, exclude=old)
        check(new, f"workers after SIGHUP: {m.worker_pids()} (old {old})")
        got = wait_until(lambda: len(re.findall(r"info: worker \d \(pid \d+\) replaced",
                                                m.stderr())) >= 2 * (round_ + 1), 5)
        check(got, f"no 'replaced' info lines; stderr:\n{m.stderr()[-1500:]}")
        old = new
        code, _, err = curl(env, m.port, url, cafile=m.ca_cert)
        check(code == 200, f"after SIGHUP: HTTP {code} {err}")

    step("no error line about the replaced workers")
    bad = [ln for ln in m.stderr().splitlines()
           if re.search(r"error: worker \d", ln) or "restarting in" in ln]
    info(f"{len(bad)} error lines")
    check(not bad, f"replacement logged as an error: {bad[:3]}")


if __name__ == "__main__":
    run(test, __doc__)
