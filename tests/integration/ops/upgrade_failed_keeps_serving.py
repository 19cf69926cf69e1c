#!/usr/bin/env python3
"""A failed binary upgrade changes nothing: the file at mitmd's path is replaced by a program
that exits 1, the master gets SIGUSR2, logs that the new master exited before it was ready,
and keeps serving (same workers, /healthz 200, a request through it works); a second SIGUSR2
after the real binary is back upgrades."""
import os
import re
import shutil
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import check, curl, proc_alive, run, standard_setup, step, wait_until  # noqa: E402
from opslib import METRICS_ARGS, http_get, metrics_port  # noqa: E402


def test(env):
    exe = os.path.join(env.mkdir("bin"), "mitmd")
    orig = env.mitmd_bin
    shutil.copy2(orig, exe)
    env.mitmd_bin = exe
    w = standard_setup(env, origin=False, workers=1, extra_args=METRICS_ARGS)
    m = w.mitmd
    mport = metrics_port(m)
    url = f"https://www.origin.test:{w.nginx.ports['valid']}/1k"
    workers = m.wait_workers(1)

    step("the file at the path exits 1: SIGUSR2 is logged as failed, nothing else changes")
    with open(exe + ".new", "w") as f:
        f.write("#!/bin/sh\nexit 1\n")
    os.chmod(exe + ".new", 0o755)
    os.rename(exe + ".new", exe)
    os.kill(m.pid, signal.SIGUSR2)
    check(wait_until(lambda: "exited before it was ready; this master keeps serving"
                     in m.stderr(), 5.0), "no 'upgrade failed' line")
    check(m.proc.poll() is None, "the master exited")
    check(m.worker_pids() == workers, f"workers changed: {workers} -> {m.worker_pids()}")
    status, _, _ = http_get(mport, "/healthz")
    check(status == 200, f"/healthz {status}")
    code, _, err = curl(env, m.port, url, cafile=m.ca_cert)
    check(code == 200, f"request after the failed upgrade: HTTP {code} {err.strip()}")

    step("the real binary back: SIGUSR2 upgrades")
    shutil.copy2(orig, exe + ".new")
    os.rename(exe + ".new", exe)
    os.kill(m.pid, signal.SIGUSR2)
    got = wait_until(lambda: re.search(r"upgrade: new master \(pid (\d+)\) serving",
                                       m.stderr()), 10.0)
    check(got is not None, "the second upgrade did not happen")
    new = int(got.group(1))
    env.stack.callback(lambda: proc_alive(new) and os.kill(new, signal.SIGTERM))
    check(m.wait_exit(10) == 0, "the old master did not exit 0")
    code, _, err = curl(env, m.port, url, cafile=m.ca_cert)
    check(code == 200, f"request after the upgrade: HTTP {code} {err.strip()}")
    os.kill(new, signal.SIGTERM)
    check(wait_until(lambda: not proc_alive(new), 10.0), "the new master did not stop")


if __name__ == "__main__":
    run(test, __doc__)
