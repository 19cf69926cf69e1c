#!/usr/bin/env python3
"""Binary upgrade with two listeners (`--mode regular@0 --mode socks5@0`, 2 workers): under
load from 2 curl loops through each (HTTPS, a new connection and a new host name per
request), the binary at mitmd's path is replaced by another copy and the master gets
SIGUSR2; the new master takes over both listening sockets (same ports, each in its mode: the
start-up lines of the new master name both), the old master drains and exits 0, and not one
request fails on either listener; the new master's /metrics counts connections on both."""
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
from opslib import METRICS_ARGS, http_get, metrics_port, scrape, track_new_masters  # noqa: E402

LINE_RE = re.compile(r"^mitmd: (.+) listening at 127\.0\.0\.1:(\d+)\.$", re.M)
PER_LISTENER = 2


def test(env):
    bindir = env.mkdir("bin")
    exe = os.path.join(bindir, "mitmd")
    orig = env.mitmd_bin
    shutil.copy2(orig, exe)
    env.mitmd_bin = exe  # the master re-executes the file at this path
    w = standard_setup(env, origin=False, workers=2,
                       extra_args=METRICS_ARGS + ["-q", "--shutdown-timeout", "10",
                                                  "--mode", "regular@0", "--mode", "socks5@0"])
    m = w.mitmd
    mport = metrics_port(m)
    ports = {d: int(p) for d, p in LINE_RE.findall(m.stderr())}
    check(len(ports) == 2, f"start-up lines: {ports}")
    p_reg, p_socks = ports["HTTP(S) proxy"], ports["SOCKS v5 proxy"]
    url = f"https://www.origin.test:{w.nginx.ports['valid']}/1k"
    results = {"regular": [], "socks5": []}
    stop = threading.Event()
    new_pid = track_new_masters(env)

    seq = iter(range(1, 1_000_000))

    def load(kind):
        extra = ["--proxy", f"socks5h://127.0.0.1:{p_socks}"] if kind == "socks5" else []
        while not stop.is_set():
            host_url = url.replace("www.origin.test", f"{kind}{next(seq)}.origin.test")
            code, body, err = curl(env, p_reg, host_url, cafile=m.ca_cert, timeout=15,
                                   extra=extra)
            results[kind].append((time.monotonic(), code, len(body), err.strip()))

    threads = [threading.Thread(target=load, args=(k,)) for k in results
               for _ in range(PER_LISTENER)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: min(len(r) for r in results.values()) >= 2 * PER_LISTENER, 10.0)
        step("replace the binary on disk, SIGUSR2: both listening sockets are handed over")
        tmp = exe + ".new"
        shutil.copy2(orig, tmp)
        os.rename(tmp, exe)
        t_usr2 = time.monotonic()
        os.kill(m.pid, signal.SIGUSR2)
        got = wait_until(lambda: re.search(r"upgrade: new master \(pid (\d+)\) serving",
                                           m.stderr()), 20.0)
        check(got is not None, f"the new master did not report serving within 20 s:\n"
              f"{m.stderr()[-1500:]}")
        new_pid.append(int(got.group(1)))
        check("2 listening sockets handed over" in m.stderr(), "the old master did not say it "
              "handed over 2 listening sockets")
        step("the old master drains and exits 0")
        rc = m.wait_exit(15)
        t_old_gone = time.monotonic()
        check(rc == 0, f"old master exit status {rc}")
        info(f"old master gone {t_old_gone - t_usr2:.2f}s after SIGUSR2")
        wait_until(lambda: min(sum(1 for r in rs if r[0] > t_old_gone)
                               for rs in results.values()) >= 2 * PER_LISTENER, 10.0)
    finally:
        stop.set()
        for t in threads:
            t.join(30)

    step("not one request failed on either listener; both served before and after")
    for kind, rs in results.items():
        bad = [r for r in rs if r[1] != 200 or r[2] != 1024]
        before = sum(1 for r in rs if r[0] < t_usr2)
        after = sum(1 for r in rs if r[0] > t_old_gone)
        info(f"{kind}: {len(rs)} requests: {before} before SIGUSR2, {after} after the old master "
             f"exited, {len(bad)} failed")
        check(not bad, f"{kind}: {len(bad)} failed requests, e.g. {bad[:3]}")
        check(before >= PER_LISTENER and after >= PER_LISTENER,
              f"{kind}: too few requests around the upgrade ({before}, {after})")

    step("the new master counts connections on both listeners, in their modes")
    status, _, _ = http_get(mport, "/healthz")
    check(status == 200, f"/healthz after the upgrade: {status}")
    want = {f'{{listener="127.0.0.1:{p_reg}",mode="regular"}}',
            f'{{listener="127.0.0.1:{p_socks}",mode="socks5"}}'}

    def counted():
        got = {labels: v for (n, labels), v in scrape(mport)[0].items()
               if n == "mitmd_connections_accepted_total"}
        return got if set(got) == want and all(v >= PER_LISTENER for v in got.values()) else None
    got = wait_until(counted, 5.0)  # the workers report once a second
    info(f"new master: {got}")
    check(got is not None, "the new master's /metrics does not count connections on both "
          f"listeners: {scrape(mport)[0]}")


if __name__ == "__main__":
    run(test, __doc__)
