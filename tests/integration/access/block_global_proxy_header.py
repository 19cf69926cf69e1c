#!/usr/bin/env python3
"""block_global (on by default, as mitmproxy) with --set proxy_protocol=true: a client whose
PROXY header names a global address (8.8.8.8, 2606:4700::1111, ::ffff:8.8.8.8) is closed
without a byte, counted (clients_blocked) and logged at most once a second; private, shared
(100.64/10), loopback and LOCAL headers pass; with --set block_global=false 8.8.8.8 passes.
Nothing leaves loopback: the addresses are only written in the headers."""
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from accesslib import setup  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "edge"))
from pplib import v1_header, v2_header  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, info, mitmd_stats, read_head, run, step, wait_until  # noqa: E402


def attempt(proxy_port, header, target):
    """attempt sends a PROXY header and a CONNECT; returns the answer's first line, or '' when
    the proxy closed without a byte."""
    sock = socket.create_connection(("127.0.0.1", proxy_port), timeout=10)
    try:
        sock.sendall(header + f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        try:
            head, rest = read_head(sock)
        except ConnectionResetError:
            return ""
        return (head or rest).split(b"\r\n", 1)[0].decode("iso-8859-1")
    finally:
        sock.close()


def test(env):
    w = setup(env, extra_args=["--set", "proxy_protocol=true"], tls=False)
    port = w.mitmd.port
    target = f"www.origin.test:{w.plain.port}"
    blocked = [("8.8.8.8 (v1)", v1_header("8.8.8.8", "127.0.0.1", 40000, port)),
               ("2606:4700::1111 (v2)", v2_header("2606:4700::1111", "::1", 40001, port)),
               ("::ffff:8.8.8.8 (v1 TCP6)", v1_header("::ffff:8.8.8.8", "::1", 40002, port))]
    admitted = [("192.168.1.10 (private)", v1_header("192.168.1.10", "127.0.0.1", 40003, port)),
                ("100.64.1.1 (shared space)", v2_header("100.64.1.1", "127.0.0.1", 40004, port)),
                ("127.0.0.1 (loopback)", v1_header("127.0.0.1", "127.0.0.1", 40005, port)),
                ("LOCAL (the socket's 127.0.0.1)", v2_header(local=True))]
    for what, hdr in blocked:
        step(f"PROXY header from {what} -> closed without a byte")
        line = attempt(port, hdr, target)
        check(line == "", f"{what}: the proxy answered {line!r}")
    for what, hdr in admitted:
        step(f"PROXY header from {what} -> CONNECT answered 200")
        line = attempt(port, hdr, target)
        check(line.startswith("HTTP/1.1 200"), f"{what}: got {line!r}")

    step("clients_blocked counts the 3 refusals; the log names the first client and the option")
    stats = {}

    def counted():
        nonlocal stats
        stats = mitmd_stats(w.mitmd)
        return stats.get("clients_blocked", -1) >= 3

    wait_until(counted, 5, interval=0.3)
    check(stats.get("clients_blocked") == 3,
          f"clients_blocked={stats.get('clients_blocked')}, expected 3")
    lines = [l for l in w.mitmd.stderr().splitlines() if "refused by block_global" in l]
    info(f"log: {lines}")
    check(lines and "client 8.8.8.8 refused by block_global" in lines[0],
          f"no 'client 8.8.8.8 refused by block_global' line: {lines}")
    check(len(lines) <= 2, f"{len(lines)} log lines for 3 refusals within a second: "
          "the refusal log is not rate-limited")
    w.mitmd.stop()

    step("--set block_global=false: the 8.8.8.8 header passes")
    m = env.mitmd(args=["--resolve", "*.origin.test=127.0.0.1", "--set", "proxy_protocol=true",
                        "--set", "block_global=false"], name="mitmd-open")
    line = attempt(m.port, v1_header("8.8.8.8", "127.0.0.1", 40006, m.port), target)
    check(line.startswith("HTTP/1.1 200"), f"8.8.8.8 with block_global=false: got {line!r}")


if __name__ == "__main__":
    run(test, __doc__)
