#!/usr/bin/env python3
"""CONFDIR/config.yaml (mitmproxy's format) sets options by their --set names, scalars and
lists; the command line wins; the master hands the values to the workers in their argv, so a
worker never reads the confdir (a worker restarted after config.yaml changed keeps the
master's values); a bad config.yaml stops start-up with file:line, exit 2."""
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (check, curl, info, kill_pid, proc_cmdline, run, standard_setup,  # noqa: E402
                     step, wait_until)

YAML = """# written as a mitmproxy user would
ssl_insecure: true
workers: 3
resolve:
  - "*.origin.test=127.0.0.1"
ignore_hosts: []
http2: false
"""

BAD = [
    ("bogus: 1\n", "config.yaml:1", "bogus"),
    ("ssl_insecure: true\nhttp2: maybe\n", "config.yaml:2", "http2"),
    ("listen_port: [1, 2]\n", "config.yaml:1", "listen_port"),
    ("ignore_hosts:\n  - a\n  - {x: 1}\n", "config.yaml:", "ignore_hosts"),
    ("confdir: /elsewhere\n", "config.yaml:1", "confdir"),
    ("a: [\n", "config.yaml:", "config.yaml"),
]


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def test(env):
    w = standard_setup(env, origin=False)  # the origins and a PKI; this mitmd is not used
    w.mitmd.stop()
    url = f"https://selfsigned.origin.test:{w.nginx.ports['selfsigned']}/1k"

    confdir = env.mkdir("conf")
    os.chmod(confdir, 0o700)
    write(os.path.join(confdir, "config.yaml"), YAML)
    step("config.yaml: ssl_insecure, resolve (a list), http2; --workers 1 on the command line "
         "wins over workers: 3")
    m = env.mitmd(confdir=confdir, workers=1, name="mitmd-yaml")
    pids = m.wait_workers(1)
    check(pids is not None and len(pids) == 1, "the command line's --workers 1 did not win")
    code, body, err = curl(env, m.port, url, cafile=m.ca_cert)
    info(f"self-signed upstream: HTTP {code}")
    check(code == 200 and len(body) == 1024,
          f"ssl_insecure/resolve from config.yaml not applied: HTTP {code} {err.strip()}")

    step("the worker's argv carries the config.yaml values as --set NAME=VALUE")
    argv = proc_cmdline(pids[0])
    info(f"worker argv: {argv}")
    for want in ["ssl_insecure=true", "resolve=*.origin.test=127.0.0.1", "http2=false"]:
        check(want in argv, f"worker argv lacks --set {want}: {argv}")
    check("workers=3" not in argv, "config.yaml's workers reached the worker although the "
          "command line gave --workers")

    step("config.yaml changed, worker killed: its replacement keeps the master's values "
         "(workers never read the confdir)")
    write(os.path.join(confdir, "config.yaml"), "ssl_insecure: false\nbogus: 1\n")
    m.expect_worker_deaths = True
    kill_pid(pids[0], signal.SIGKILL)
    new = wait_until(lambda: [p for p in (m.worker_pids() or []) if p != pids[0]] or None, 10)
    check(new, "no replacement worker")
    ok = wait_until(lambda: curl(env, m.port, url, cafile=m.ca_cert)[0] == 200, 10, 0.3)
    check(ok, "the replacement worker lost ssl_insecure: it must not read config.yaml")
    m.stop()

    step("the command line wins: config.yaml ssl_insecure: true, --no-ssl-insecure -> 502")
    write(os.path.join(confdir, "config.yaml"), YAML)
    m2 = env.mitmd(confdir=confdir, args=["--no-ssl-insecure"], name="mitmd-cli-wins")
    code, _, err = curl(env, m2.port, url, cafile=m2.ca_cert)
    check(code == 502, f"--no-ssl-insecure must beat config.yaml: HTTP {code} {err.strip()}")
    m2.stop()

    step("a list on the command line replaces config.yaml's list (mitmproxy's precedence)")
    write(os.path.join(confdir, "config.yaml"),
          "resolve:\n  - 'selfsigned.origin.test=127.0.0.9'\nssl_insecure: true\n")
    m3 = env.mitmd(confdir=confdir, args=["--resolve", "*.origin.test=127.0.0.1"],
                   name="mitmd-list")
    code, body, err = curl(env, m3.port, url, cafile=m3.ca_cert)
    check(code == 200, f"--resolve on the command line did not replace config.yaml's: "
          f"HTTP {code} {err.strip()}")
    m3.stop()

    for text, where, name in BAD:
        step(f"bad config.yaml {text.strip()!r}: exit 2, one line with {where} and {name}")
        write(os.path.join(confdir, "config.yaml"), text)
        cp = env.run_cmd([env.mitmd_bin, "--confdir", confdir, "-p", "0"], timeout=10)
        lines = [ln for ln in cp.stderr.splitlines() if ln.strip()]
        info(f"exit {cp.returncode}: {cp.stderr.strip()!r}")
        check(cp.returncode == 2, f"exit {cp.returncode}, expected 2")
        check(len(lines) == 1 and where in lines[0] and name in lines[0],
              f"expected one line naming {where} and {name}: {lines}")

    step("mitmd cert reads config.yaml too (a bad one is refused the same way)")
    cp = env.run_cmd([env.mitmd_bin, "--confdir", confdir, "cert", "a.test"], timeout=10)
    check(cp.returncode == 2, f"mitmd cert with a bad config.yaml exited {cp.returncode}")


if __name__ == "__main__":
    run(test, __doc__)
