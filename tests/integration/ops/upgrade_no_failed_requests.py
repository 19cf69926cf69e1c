#!/usr/bin/env python3
"""Zero-downtime binary upgrade: under load from 4 curl loops (HTTPS through mitmd, a new
connection and a new host name, so a new forged certificate, per request), the binary at mitmd's path is replaced by another copy and the
master gets SIGUSR2; the new master (running the new file, same listener port, same metrics
port) takes over, the old master drains and exits 0, and not one request fails."""
import os
import re
import shutil
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (check, curl, info, proc_alive, run, standard_setup, step,  # noqa: E402
                     wait_until)
from opslib import METRICS_ARGS, http_get, metrics_port, scrape, total, track_new_masters  # noqa: E402

CLIENTS = 4


def test(env):
    bindir = env.mkdir("bin")
    exe = os.path.join(bindir, "mitmd")
    orig = env.mitmd_bin
    shutil.copy2(orig, exe)
    env.mitmd_bin = exe  # the master re-executes the file at this path
    w = standard_setup(env, origin=False, workers=2,
                       extra_args=METRICS_ARGS + ["-q", "--shutdown-timeout", "10"])
    m = w.mitmd
    mport = metrics_port(m)
    url = f"https://www.origin.test:{w.nginx.ports['valid']}/1k"
    results, stop = [], threading.Event()
    new_pid = track_new_masters(env)

    seq = iter(range(1, 1_000_000))

    def load():
        while not stop.is_set():
            # a new name each time: every request needs a certificate forged by the master
            # of the worker that takes it, the old master too while its workers drain
            host_url = url.replace("www.origin.test", f"h{next(seq)}.origin.test")
            started = time.monotonic()
            code, body, err = curl(env, m.port, host_url, cafile=m.ca_cert, timeout=15)
            results.append((time.monotonic(), code, len(body), err.strip(), started))

    threads = [threading.Thread(target=load) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len(results) >= 2 * CLIENTS, 10.0)
        step("replace the binary on disk (another copy), SIGUSR2 to the master")
        tmp = exe + ".new"
        shutil.copy2(orig, tmp)
        os.rename(tmp, exe)  # as a package upgrade does: a new file at the same path
        new_ino = os.stat(exe).st_ino
        t_usr2 = time.monotonic()
        os.kill(m.pid, signal.SIGUSR2)
        got = wait_until(lambda: re.search(r"upgrade: new master \(pid (\d+)\) serving",
                                           m.stderr()), 10.0)
        check(got is not None, "the new master did not report serving within 10 s")
        new_pid.append(int(got.group(1)))
        info(f"new master pid {new_pid[0]} serving {time.monotonic() - t_usr2:.2f}s after SIGUSR2")
        step("the old master drains and exits 0")
        rc = m.wait_exit(15)
        t_old_gone = time.monotonic()
        check(rc == 0, f"old master exit status {rc}")
        info(f"old master gone {t_old_gone - t_usr2:.2f}s after SIGUSR2")
        # "after": started once the old master was gone (a request it served can still be
        # seen to end after that: curl and this thread take a moment to return)
        wait_until(lambda: sum(1 for r in results if r[4] > t_old_gone) >= 2 * CLIENTS, 10.0)
    finally:
        stop.set()
        for t in threads:
            t.join(30)

    step("not one request failed; requests were served before, during and after")
    bad = [r for r in results if r[1] != 200 or r[2] != 1024]
    before = sum(1 for r in results if r[0] < t_usr2)
    after = sum(1 for r in results if r[4] > t_old_gone)
    info(f"{len(results)} requests: {before} before SIGUSR2, {after} started after the old "
         f"master exited, {len(bad)} failed")
    check(not bad, f"{len(bad)} failed requests, e.g. {bad[:3]}")
    check(before >= CLIENTS and after >= CLIENTS, f"too few requests around the upgrade ({before}, {after})")

    step("the new master runs the new file, serves /healthz and /metrics on the same port")
    pid = new_pid[0]
    check(os.stat(f"/proc/{pid}/exe").st_ino == new_ino, "the new master runs another file")
    status, _, body = http_get(mport, "/healthz")
    check(status == 200, f"/healthz after the upgrade: {status} {body!r}")
    check(wait_until(lambda: total(scrape(mport)[0], "mitmd_requests_total") >= after, 5.0),
          "the new master's /metrics does not count the requests it served")


if __name__ == "__main__":
    run(test, __doc__)
