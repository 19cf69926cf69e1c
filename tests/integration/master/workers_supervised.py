#!/usr/bin/env python3
"""The master keeps exactly --workers workers alive, logs a worker's death with its cause,
stops everything on SIGTERM, and workers exit by themselves when the master is killed."""
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (check, info, kill_pid, proc_alive, proc_cmdline, run, step,  # noqa: E402
                     wait_until)


def test(env):
    m = env.mitmd(workers=2)
    m.expect_worker_deaths = True
    step("--workers 2 runs exactly 2 worker processes (children of the master with --worker)")
    pids = m.wait_workers(2, timeout=5)
    check(pids is not None, f"expected 2 workers, found {m.worker_pids()}")
    info(f"master {m.pid}, workers {pids}")
    for p in pids:
        argv = proc_cmdline(p)
        check(os.path.realpath(f"/proc/{p}/exe") == os.path.realpath(env.mitmd_bin),
              f"worker {p} does not run the mitmd binary (fork+exec expected)")
        check("--worker" in argv, f"worker {p} cmdline lacks --worker: {argv}")

    step("kill -9 of one worker: a replacement appears, count is 2 again, death is logged")
    victim = pids[0]
    err_before = len(m.stderr())
    kill_pid(victim, signal.SIGKILL)
    t0 = time.monotonic()
    new = m.wait_workers(2, timeout=5, exclude=[victim])
    check(new is not None, f"no replacement worker within 5s; workers now {m.worker_pids()}")
    info(f"replaced in {time.monotonic() - t0:.2f}s; workers now {new}")
    check(pids[1] in new, f"the surviving worker {pids[1]} was restarted too: {new}")
    logged = wait_until(lambda: re.search(r"(signal 9|SIGKILL|killed)", m.stderr()[err_before:]),
                        3)
    check(logged is not None, "stderr does not log the worker's death with its cause "
          f"(signal 9 / SIGKILL); new stderr: {m.stderr()[err_before:]!r}")
    death_lines = [ln for ln in m.stderr()[err_before:].splitlines()
                   if re.search(r"(signal 9|SIGKILL|killed)", ln)]
    info(f"logged: {death_lines[0]!r}")
    check(any("worker" in ln.lower() for ln in death_lines),
          f"the death line does not say it was a worker: {death_lines!r}")
    if not any(str(victim) in ln for ln in death_lines):
        info(f"note: the death line does not mention the pid {victim}")

    step("SIGTERM to the master: master and all workers gone within 2s")
    workers = m.worker_pids()
    os.kill(m.pid, signal.SIGTERM)
    t0 = time.monotonic()
    rc = m.wait_exit(2.0)
    check(rc is not None, "master still running 2s after SIGTERM")
    gone = wait_until(lambda: not any(proc_alive(p) for p in workers),
                      max(0.0, 2.0 - (time.monotonic() - t0)) + 0.05)
    check(gone, f"workers {[p for p in workers if proc_alive(p)]} alive 2s after SIGTERM")
    info(f"master exit code {rc}, all gone after {time.monotonic() - t0:.2f}s")
    check(rc == 0, f"master exited {rc} after SIGTERM, expected 0 (graceful)")

    step("kill -9 of the master: workers exit by themselves within 2s")
    m2 = env.mitmd(workers=2, name="mitmd-second")
    workers = m2.wait_workers(2, timeout=5)
    check(workers is not None, f"expected 2 workers, found {m2.worker_pids()}")
    kill_pid(m2.pid, signal.SIGKILL)
    m2.wait_exit(5)
    t0 = time.monotonic()
    gone = wait_until(lambda: not any(proc_alive(p) for p in workers), 2.0)
    check(gone, f"workers {[p for p in workers if proc_alive(p)]} still alive 2s after the "
          "master was killed")
    info(f"orphaned workers exited after {time.monotonic() - t0:.2f}s")


if __name__ == "__main__":
    run(test, __doc__)
