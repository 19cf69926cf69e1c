#!/usr/bin/env python3
"""Two listeners on one address are refused at start-up, before anything listens: the same
port written twice (`--mode regular@P --mode socks5@P`), a mode's @PORT equal to -p, and the
same address written two ways (`@localhost:P` and `@127.0.0.1:P`, found once resolved) each
exit 2 with one line naming both --mode specs and the address; nothing is bound on P."""
import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, free_port, info, run, step  # noqa: E402


def test(env):
    port = free_port()
    cases = [
        (["--mode", f"regular@{port}", "--mode", f"socks5@{port}"],
         [f"--mode regular@{port}", f"--mode socks5@{port}", f"127.0.0.1:{port}"]),
        (["-p", str(port), "--mode", "regular", "--mode", f"reverse:https://127.0.0.1:1@{port}"],
         ["--mode regular", f"reverse:https://127.0.0.1:1@{port}", f"127.0.0.1:{port}"]),
        (["--mode", f"regular@localhost:{port}", "--mode", f"socks5@127.0.0.1:{port}"],
         [f"regular@localhost:{port}", f"socks5@127.0.0.1:{port}", f"127.0.0.1:{port}"]),
        (["--mode", f"regular@0.0.0.0:{port}", "--mode", f"socks5@127.0.0.1:{port}"],
         [f"regular@0.0.0.0:{port}", f"socks5@127.0.0.1:{port}", f"127.0.0.1:{port}"]),
    ]
    for args, musts in cases:
        step(f"mitmd {' '.join(args)} -> exit 2, one line naming {musts}")
        argv = [env.mitmd_bin, "--confdir", env.path("conf"), "--workers", "1"]
        if "-p" not in args:
            argv += ["-p", "0"]
        cp = env.run_cmd(argv + args, timeout=15)
        lines = [ln for ln in cp.stderr.splitlines() if ln.strip()]
        info(f"exit {cp.returncode}: {cp.stderr.strip()!r}")
        check(cp.returncode == 2, f"exited {cp.returncode}, expected 2")
        check(len(lines) == 1, f"expected one line, got {lines}")
        check("listening" not in cp.stderr, "it listened first")
        for must in musts:
            check(must in lines[0], f"the line does not name {must!r}: {lines[0]!r}")
        # nothing was left bound: the port is still free
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))


if __name__ == "__main__":
    run(test, __doc__)
