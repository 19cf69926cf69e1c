#!/usr/bin/env python3
"""Binary upgrade between two builds: mitmd (build tag T) serves under load from mitmd-bench
(HTTP/1.1 through CONNECT, 8 connections, 10 requests each then a new one, 300 requests/s
open loop, the 1 KiB file); the file at mitmd's path is replaced by mitmd-peer (the same
objects linked with the build tag T-peer) and the master gets SIGUSR2. The new master runs
the peer file, /metrics (same port) shows mitmd_build_info{build="T-peer"} where it showed
build="T", `--version` of the two files says the same, the old master exits 0, and
mitmd-bench counts 0 errors over the whole run (before, during and after the upgrade)."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (_pdeathsig, check, info, proc_alive, run, standard_setup, step,  # noqa
                     stop_popen, wait_until)
from opslib import METRICS_ARGS, metrics_port, scrape, track_new_masters  # noqa: E402

BUILD_RE = re.compile(r'build="([^"]*)"')


def build_of(mport):
    """build_of returns the build label of mitmd_build_info on /metrics."""
    for (name, labels), _ in scrape(mport)[0].items():
        if name == "mitmd_build_info":
            got = BUILD_RE.search(labels)
            return got.group(1) if got else None
    return None


def version_of(path):
    out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
    got = re.search(r"\(build (\S+)\)", out.stdout)
    check(got is not None, f"{path} --version: {out.stdout!r}")
    return got.group(1)


def test(env):
    builddir = os.path.dirname(os.path.abspath(env.mitmd_bin))
    peer, bench = os.path.join(builddir, "mitmd-peer"), os.path.join(builddir, "mitmd-bench")
    check(os.access(peer, os.X_OK) and os.access(bench, os.X_OK),
          f"{peer} and {bench} are built with the tests (cmake --build)")
    tag, peer_tag = version_of(env.mitmd_bin), version_of(peer)
    check(peer_tag == tag + "-peer", f"build tags {tag!r} and {peer_tag!r}")
    bindir = env.mkdir("bin")
    exe = os.path.join(bindir, "mitmd")
    shutil.copy2(env.mitmd_bin, exe)
    env.mitmd_bin = exe  # the master re-executes the file at this path
    w = standard_setup(env, origin=False, workers=2,
                       extra_args=METRICS_ARGS + ["-q", "--shutdown-timeout", "10"])
    m = w.mitmd
    mport = metrics_port(m)
    check(build_of(mport) == tag, f"/metrics build {build_of(mport)!r}, expected {tag!r}")
    new_pid = track_new_masters(env)

    step("mitmd-bench through mitmd (build %s) for 7 s; SIGUSR2 to mitmd-peer after 2 s" % tag)
    summary = env.path("bench.json")
    argv = [bench, "--proxy", f"127.0.0.1:{m.port}", "--connect",
            f"127.0.0.1:{w.nginx.ports['valid']}", "--host", "www.origin.test", "--cafile",
            m.ca_cert, "--path", "/1k", "-c", "8", "-t", "1", "--reqs-per-conn", "10",
            "--rate", "300", "-d", "7s", "--timeout", "15s", "--json", summary]
    info("command: " + " ".join(argv))
    log = env.path("bench.out")
    with open(log, "wb") as out:
        b = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, preexec_fn=_pdeathsig)
    env.stack.callback(stop_popen, b)
    time.sleep(2.0)
    check(b.poll() is None, f"mitmd-bench ended early: {open(log).read()[-800:]}")
    tmp = exe + ".new"
    shutil.copy2(peer, tmp)
    os.rename(tmp, exe)  # as a package upgrade does: a new file at the same path
    peer_ino = os.stat(exe).st_ino
    t_usr2 = time.monotonic()
    os.kill(m.pid, signal.SIGUSR2)
    got = wait_until(lambda: re.search(r"upgrade: new master \(pid (\d+)\) serving",
                                       m.stderr()), 20.0)
    check(got is not None, f"the new master did not report serving within 20 s:\n"
          f"{m.stderr()[-1500:]}")
    new_pid.append(int(got.group(1)))
    info(f"new master pid {new_pid[0]} serving {time.monotonic() - t_usr2:.2f}s after SIGUSR2")
    rc = m.wait_exit(15)
    check(rc == 0, f"old master exit status {rc}")
    info(f"old master gone {time.monotonic() - t_usr2:.2f}s after SIGUSR2")

    step("the new master runs mitmd-peer and /metrics says so")
    check(os.stat(f"/proc/{new_pid[0]}/exe").st_ino == peer_ino,
          "the new master does not run the peer file")
    check(version_of(exe) == peer_tag, "the file at mitmd's path is not the peer")
    check(build_of(mport) == peer_tag, f"/metrics build {build_of(mport)!r} after the "
          f"upgrade, expected {peer_tag!r}")

    step("mitmd-bench: 0 errors over the whole run")
    rc = b.wait(30)
    text = open(log).read()
    check(rc == 0 and os.path.exists(summary), f"mitmd-bench exit {rc}: {text[-800:]}")
    with open(summary) as f:
        s = json.loads(f.read().strip().splitlines()[-1])
    info(f"mitmd-bench: {s['requests']} requests, {s['errors']} errors, {s['rps']} req/s, "
         f"p99 {s['latency_us']['p99'] / 1000:.1f} ms")
    check(s["errors"] == 0, f"{s['errors']} errors, first: {s.get('first_error')}")
    check(s["requests"] >= 1000, f"only {s['requests']} requests")


if __name__ == "__main__":
    run(test, __doc__)
