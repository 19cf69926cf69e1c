#!/usr/bin/env python3
"""--set block_private=true: clients from private addresses are closed without a byte and
counted (clients_blocked); loopback clients (127.0.0.1, and ::1 on an IPv6 listener) still
pass, as in mitmproxy, whose block_private "does not affect loopback addresses". Private
clients come as PROXY headers (10.1.2.3, fd00::5, 169.254.1.1), so nothing leaves loopback."""
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from accesslib import curl, raw_request, setup  # noqa: E402
from block_global_proxy_header import attempt  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "edge"))
from pplib import v1_header, v2_header  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, mitmd_stats, run, step, wait_until  # noqa: E402


def test(env):
    w = setup(env, extra_args=["--set", "block_private=true"], tls=False)
    url = f"http://www.origin.test:{w.plain.port}/hello"

    step("block_private=true, client 127.0.0.1 -> 200 (loopback always passes, as mitmproxy)")
    rc, code, _, _, err = curl(env, ["-x", f"http://127.0.0.1:{w.mitmd.port}"], url)
    check(code == 200, f"curl rc {rc}, HTTP {code}: {err.strip()}")

    step("block_private=true on [::1], client ::1 -> 200")
    m6 = env.mitmd(args=["--resolve", "*.origin.test=127.0.0.1", "--listen-host", "::1",
                         "--set", "block_private=true"], name="mitmd-v6")
    status, _, _ = raw_request(m6.port, (f"GET {url} HTTP/1.1\r\nHost: www.origin.test\r\n"
                                         "Connection: close\r\n\r\n").encode(),
                               host="::1", family=socket.AF_INET6)
    check(status == 200, f"client ::1 got {status}")
    m6.stop()

    step("block_private=true behind PROXY headers: 10.1.2.3, fd00::5, 169.254.1.1 -> closed "
         "without a byte; 127.0.0.1 passes")
    m = env.mitmd(args=["--resolve", "*.origin.test=127.0.0.1", "--set", "proxy_protocol=true",
                        "--set", "block_private=true"], name="mitmd-pp")
    target = f"www.origin.test:{w.plain.port}"
    for src, hdr in (("10.1.2.3", v1_header("10.1.2.3", "127.0.0.1", 40000, m.port)),
                     ("fd00::5", v2_header("fd00::5", "::1", 40001, m.port)),
                     ("169.254.1.1", v2_header("169.254.1.1", "127.0.0.1", 40002, m.port))):
        line = attempt(m.port, hdr, target)
        check(line == "", f"client {src}: the proxy answered {line!r}")
    line = attempt(m.port, v1_header("127.0.0.1", "127.0.0.1", 40003, m.port), target)
    check(line.startswith("HTTP/1.1 200"), f"client 127.0.0.1 behind a header: {line!r}")

    step("clients_blocked=3 and a 'refused by block_private' line")
    stats = {}

    def counted():
        nonlocal stats
        stats = mitmd_stats(m)
        return stats.get("clients_blocked", -1) >= 3

    wait_until(counted, 5, interval=0.3)
    check(stats.get("clients_blocked") == 3,
          f"clients_blocked={stats.get('clients_blocked')}, expected 3")
    check("client 10.1.2.3 refused by block_private" in m.stderr(),
          "no 'client 10.1.2.3 refused by block_private' line on stderr")


if __name__ == "__main__":
    run(test, __doc__)
