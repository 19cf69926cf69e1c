#!/usr/bin/env python3
"""--listen-host takes a name (issue 15 item 8): `--listen-host localhost` is resolved at
start and mitmd serves on what it resolves to; a name that does not resolve is one line
naming it, exit 2."""
import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, curl, info, run, standard_setup, step  # noqa: E402


def test(env):
    w = standard_setup(env, origin=False)
    w.mitmd.stop()
    addrs = sorted({ai[4][0] for ai in socket.getaddrinfo("localhost", 0,
                                                         type=socket.SOCK_STREAM)})
    info(f"localhost resolves to {addrs}")

    step("mitmd --listen-host localhost starts and says where it listens")
    m = env.mitmd(args=["--listen-host", "localhost", "--upstream-ca", w.pki.ca_cert,
                        "--resolve", "*.origin.test=127.0.0.1"], name="mitmd-localhost")
    err = m.stderr()
    check("listening on" in err, f"no 'listening on' line: {err!r}")

    step("clients reach it through the first IPv4 address of localhost (HTTPS intercepted)")
    v4 = [a for a in addrs if ":" not in a]
    check(v4, "localhost has no IPv4 address on this machine")
    url = f"https://www.origin.test:{w.nginx.ports['valid']}/1k"
    code, body, cerr = curl(env, m.port, url, cafile=m.ca_cert,
                            extra=["-x", f"http://localhost:{m.port}"])
    check(code == 200 and len(body) == 1024, f"curl -x http://localhost:{m.port}: HTTP {code} "
          f"{cerr.strip()}")
    if len(addrs) > 1:  # every address is served (modes/listen_host_all_addresses)
        check(" and " in err, f"localhost has {addrs} but mitmd does not list them: {err!r}")
    m.stop()

    step("--listen-host no-such-host.invalid: one line naming it, exit 2")
    cp = env.run_cmd([env.mitmd_bin, "--confdir", env.path("c2"), "-p", "0", "--listen-host",
                      "no-such-host.invalid"], timeout=15)
    info(f"exit {cp.returncode}: {cp.stderr.strip()!r}")
    check(cp.returncode == 2 and "no-such-host.invalid" in cp.stderr,
          f"exit {cp.returncode}, stderr {cp.stderr!r}")


if __name__ == "__main__":
    run(test, __doc__)
