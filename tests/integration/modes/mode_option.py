#!/usr/bin/env python3
"""--mode takes mitmproxy's spec syntax, as -m, --mode, --set mode= and `mode:` in
config.yaml: socks5 is served whichever way it is given; "@PORT" sets the listener's port (-p is
for modes without one). Refused with one line naming --mode and the cause, exit 2, nothing
listening: an unknown mode, a bad listen port, reverse without a server or with a scheme mitmd
cannot serve, upstream:https:// (not yet supported), --upstream-auth without a colon, and two
modes on the same address (modes/several_listeners has several listeners at work)."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (_pdeathsig, check, free_port, info, run, step, stop_popen,  # noqa
                     tail, wait_until)
from socks5lib import recv_exact  # noqa: E402
import socket  # noqa: E402


def greets_socks5(port):
    """greets_socks5 returns whether the listener at port answers a SOCKS5 greeting."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"\x05\x01\x00")
    got = recv_exact(s, 2, timeout=5)
    s.close()
    return got == b"\x05\x00"


def test(env):
    bad = [
        (["--mode", "bogus"], ["--mode", "bogus", "unknown mode"]),
        (["--set", "mode=wireguard"], ["--set mode", "unknown mode"]),
        (["--mode", "socks5@http"], ["--mode", "listen port"]),
        (["--mode", "reverse"], ["--mode", "expected a server"]),
        (["--mode", "reverse:tls://a.test:443"], ["--mode", "unsupported scheme"]),
        (["--mode", "regular:x"], ["--mode", "no argument"]),
        (["--mode", "upstream:https://127.0.0.1:3128"], ["--mode", "upstream:https://",
                                                         "not yet supported"]),
        (["--mode", "upstream:http://127.0.0.1:3128", "--upstream-auth", "nocolon"],
         ["--upstream-auth", "USER:PASS"]),
        (["--mode", "regular@1080", "--mode", "socks5@1080"],
         ["--mode regular@1080", "--mode socks5@1080", "127.0.0.1:1080", "both listen on"]),
    ]
    for args, musts in bad:
        step(f"mitmd -p 0 {' '.join(args)} -> exit 2, one line naming {musts}")
        cp = env.run_cmd([env.mitmd_bin, "--confdir", env.path("conf"), "-p", "0",
                          "--workers", "1"] + args, timeout=15)
        lines = [ln for ln in cp.stderr.splitlines() if ln.strip()]
        info(f"exit {cp.returncode}: {cp.stderr.strip()!r}")
        check(cp.returncode == 2, f"exited {cp.returncode}, expected 2")
        check(len(lines) == 1, f"expected one line, got {lines}")
        check("listening on" not in cp.stderr, "it listened first")
        for must in musts:
            check(must in lines[0], f"the line does not name {must!r}: {lines[0]!r}")

    for i, args in enumerate((["-m", "socks5"], ["--set", "mode=SOCKS5"], ["--mode", "socks5@0"])):
        step(f"mitmd {' '.join(args)} serves SOCKS5")
        # a name per instance: its log files, where the harness reads the listening port
        # (a name from hash() % 1000 collided now and then, and the port of the one before
        # was read)
        m = env.mitmd(args=args, name=f"socks5-{i}")
        check(greets_socks5(m.port), f"{args}: no SOCKS5 method reply")
        m.stop()

    step("config.yaml `mode: socks5` -> SOCKS5; the command line's --mode wins over it")
    conf = env.mkdir("yamlconf")
    with open(os.path.join(conf, "config.yaml"), "w") as f:
        f.write("mode: socks5\n")
    m = env.mitmd(confdir=conf, name="yaml")
    check(greets_socks5(m.port), "config.yaml mode: socks5 not applied")
    m.stop()
    m = env.mitmd(args=["--mode", "regular"], confdir=conf, name="yamlwins")
    s = socket.create_connection(("127.0.0.1", m.port), timeout=5)
    s.sendall(b"\x05\x01\x00")
    got = recv_exact(s, 12, timeout=5)
    s.close()
    check(got.startswith(b"HTTP/1.1 400"), f"--mode regular over config.yaml: {got!r}")
    m.stop()

    step("config.yaml `mode: [socks5@0, regular@0]`: two listeners, SOCKS5 on the first")
    conf = env.mkdir("yamllist")
    with open(os.path.join(conf, "config.yaml"), "w") as f:
        f.write("mode:\n  - socks5@0\n  - regular@0\n")
    m = env.mitmd(confdir=conf, name="yamllist")
    lines = dict(re.findall(r"mitmd: (.+) listening at 127\.0\.0\.1:(\d+)\.", m.stderr()))
    check(sorted(lines) == ["HTTP(S) proxy", "SOCKS v5 proxy"], f"start-up lines: {lines}")
    check(int(lines["SOCKS v5 proxy"]) == m.port and greets_socks5(m.port),
          "the first listener of the yaml list is not SOCKS5")
    m.stop()

    step("--mode socks5@PORT listens on PORT (-p 0 is for modes without @PORT)")
    port = free_port()
    err_path = env.path("at-port.stderr")
    with open(err_path, "wb") as err:
        proc = subprocess.Popen([env.mitmd_bin, "--confdir", env.path("atconf"), "--workers", "1",
                                 "--mode", f"socks5@127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                                stderr=err, stdin=subprocess.DEVNULL, preexec_fn=_pdeathsig)
    try:
        ok = wait_until(lambda: re.search(r"listening on 127\.0\.0\.1:%d " % port,
                                          open(err_path).read()) or proc.poll() is not None, 10)
        check(ok and proc.poll() is None, f"not listening on {port}: {tail(err_path)}")
        check(greets_socks5(port), "no SOCKS5 on the @PORT listener")
    finally:
        stop_popen(proc)


if __name__ == "__main__":
    run(test, __doc__)
