#!/usr/bin/env python3
"""Started as root, mitmd's workers cannot reach the CA key nor write the certificate cache
(issue 10 item 2): each worker runs as an unprivileged user (default nobody) with no
supplementary groups and no_new_privs, a process with the worker's credentials cannot open
mitmd-ca.pem, the certcache descriptor a worker holds cannot be written or mapped writable
even when reopened read-write, and interception still works (the master hands the workers
--upstream-ca and -w from a 0700 directory they could not open). Skips (77) unless root."""
import mmap
import os
import pwd
import shutil
import stat
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, curl, info, run, standard_setup, step, wait_until  # noqa: E402


def status_fields(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.split()
    return out


def test(env):
    if os.geteuid() != 0:
        print("SKIP: needs root (workers drop privileges only when the master is root)")
        sys.exit(77)
    nobody = pwd.getpwnam("nobody")
    w = standard_setup(env, workers=2, flows=True)
    m = w.mitmd
    pids = m.wait_workers(2)
    check(pids, f"expected 2 workers, found {m.worker_pids()}")
    check(stat.S_IMODE(os.stat(env.tmp).st_mode) == 0o700,
          "the test directory (holding --upstream-ca and -w) should be 0700")

    step("an intercepted request works: the workers got --upstream-ca and -w from the master")
    url = f"https://www.origin.test:{w.nginx.ports['valid']}/1k"
    code, _, err = curl(env, m.port, url, cafile=m.ca_cert)
    check(code == 200, f"curl through mitmd: HTTP {code} {err.strip()}")

    step("the -w file is 0600 and has the record")
    st = os.stat(w.flows)
    check(stat.S_IMODE(st.st_mode) == 0o600, f"-w file mode {oct(stat.S_IMODE(st.st_mode))}")
    def recorded():
        with open(w.flows) as f:
            return "www.origin.test" in f.read()

    # the record is written after the response went out: give the write a moment
    check(wait_until(recorded, 5.0), "-w file has no record of the request")

    for pid in pids:
        step(f"worker {pid} runs as nobody, no groups, no_new_privs")
        sf = status_fields(pid)
        info(f"Uid {sf['Uid']} Gid {sf['Gid']} Groups {sf['Groups']} NoNewPrivs "
             f"{sf['NoNewPrivs']}")
        check(sf["Uid"] == [str(nobody.pw_uid)] * 4, f"worker Uid {sf['Uid']}, want nobody")
        check(sf["Gid"] == [str(nobody.pw_gid)] * 4, f"worker Gid {sf['Gid']}, want nobody's")
        check(sf["Groups"] == [], f"worker keeps supplementary groups {sf['Groups']}")
        check(sf["NoNewPrivs"] == ["1"], "worker without no_new_privs")

    step("a process with the worker's credentials cannot open mitmd-ca.pem")
    check(os.path.exists(m.ca_key), f"{m.ca_key} missing")
    setpriv = shutil.which("setpriv")
    check(setpriv, "setpriv (util-linux) not found")
    r = subprocess.run([setpriv, f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
                        "--clear-groups", "--", "cat", m.ca_key],
                       capture_output=True, timeout=10)
    check(r.returncode != 0 and b"PRIVATE KEY" not in r.stdout,
          f"opened the CA key as the worker's user (rc {r.returncode})")
    info(f"cat as nobody: {r.stderr.decode(errors='replace').strip()}")

    step("the certcache descriptor of a worker, reopened read-write, cannot write the cache")
    pid = pids[0]
    target = os.readlink(f"/proc/{pid}/fd/5")
    check("mitmd-certcache" in target, f"worker fd 5 is {target}, not the certcache")
    fd = os.open(f"/proc/{pid}/fd/5", os.O_RDWR)  # root: the strongest reopen there is
    try:
        try:
            os.pwrite(fd, b"X", 8192)
            wrote = True
        except PermissionError:
            wrote = False
        check(not wrote, "wrote into the certcache through a worker's descriptor")
        try:
            mm = mmap.mmap(fd, 4096, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            mm.close()
            mapped = True
        except PermissionError:
            mapped = False
        check(not mapped, "mapped the certcache writable through a worker's descriptor")
    finally:
        os.close(fd)

    step("still serving after the probes")
    code, _, err = curl(env, m.port, url, cafile=m.ca_cert)
    check(code == 200, f"curl after the probes: HTTP {code} {err.strip()}")
    m.check_no_crash()


if __name__ == "__main__":
    run(test, __doc__)
