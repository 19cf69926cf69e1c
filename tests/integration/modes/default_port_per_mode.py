#!/usr/bin/env python3
"""A mode without @PORT takes mitmproxy 10's default port for that mode (mode_specs.py
default_port: socks5 1080, the others 8080) unless --listen-port is given (-p, --set
listen_port, config.yaml). Checked through the start-up refusal of two listeners on one
address, which needs no port to be free: `--mode socks5 --mode regular@1080` clashes on 1080,
`--mode regular --mode transparent` on 8080, and with -p P, --set listen_port=P or
`listen_port: P` in config.yaml `--mode socks5 --mode regular` clash on P: exit 2, one line
naming both specs and the address. When 127.0.0.1:1080 is free, `--mode socks5 --mode
regular@0` also starts and says it listens on 1080."""
import os
import socket
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, free_port, info, run, step, wait_until  # noqa: E402


def refused(env, args, musts, confdir=None):
    argv = [env.mitmd_bin, "--confdir", confdir or env.path("conf"), "--workers", "1"] + args
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    lines = [ln for ln in cp.stderr.splitlines() if ln.strip()]
    info(f"{' '.join(args)} -> {cp.returncode}: {lines}")
    check(cp.returncode == 2, f"expected exit 2, got {cp.returncode}: {cp.stderr!r}")
    check(len(lines) == 1 and all(m in lines[0] for m in musts),
          f"expected one line naming {musts}, got {lines}")


def test(env):
    p = free_port()
    step("--mode socks5 --mode regular@1080: socks5 defaults to 1080 -> clash on 1080")
    refused(env, ["--mode", "socks5", "--mode", "regular@1080"],
            ["--mode socks5", "--mode regular@1080", "127.0.0.1:1080"])
    step("--mode regular --mode transparent: both default to 8080 -> clash on 8080")
    refused(env, ["--mode", "regular", "--mode", "transparent"],
            ["--mode regular", "--mode transparent", "127.0.0.1:8080"])
    step("reverse and upstream default to 8080 too")
    refused(env, ["--mode", "reverse:http://127.0.0.1:1", "--mode", "upstream:http://127.0.0.1:1"],
            ["reverse:http://127.0.0.1:1", "upstream:http://127.0.0.1:1", "127.0.0.1:8080"])
    for how, args, confdir in (
            ("-p P", ["-p", str(p)], None),
            ("--set listen_port=P", ["--set", f"listen_port={p}"], None),
            ("config.yaml listen_port: P", [], env.mkdir("yamlconf"))):
        step(f"{how}: --listen-port wins over the mode's default -> socks5 and regular clash")
        if confdir is not None:
            with open(os.path.join(confdir, "config.yaml"), "w") as f:
                f.write(f"listen_port: {p}\n")
        refused(env, args + ["--mode", "socks5", "--mode", "regular"],
                ["--mode socks5", "--mode regular", f"127.0.0.1:{p}"], confdir)

    step("when 127.0.0.1:1080 is free: --mode socks5 --mode regular@0 listens on 1080")
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", 1080))
        free = True
    except OSError:
        free = False
    s.close()
    if not free:
        info("127.0.0.1:1080 is taken on this machine: positive check skipped")
        return
    m = env.mitmd(args=["--mode", "socks5", "--mode", "regular@0"], start=False)
    argv = [a for a in m.argv]
    i = argv.index("-p")
    del argv[i:i + 2]  # the harness passes -p 0; this check is about its absence
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=open(m.stderr_path, "wb"),
                            stdin=subprocess.DEVNULL)
    try:
        ok = wait_until(lambda: "listening on" in m.stderr() or proc.poll() is not None, 10)
        if proc.poll() is not None and "Address already in use" in m.stderr():
            info("1080 was taken meanwhile: positive check skipped")
            return
        check(ok and "SOCKS v5 proxy listening at 127.0.0.1:1080." in m.stderr(),
              f"expected the SOCKS v5 listener on 1080:\n{m.stderr()}")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    run(test, __doc__)
