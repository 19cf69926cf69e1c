#!/usr/bin/env python3
"""--mode socks5 refuses what it cannot serve with the RFC 1928 reply for it, closing only
that connection: a SOCKS4 or garbage greeting is closed without a byte, a client offering only
username/password gets "no acceptable methods" (0xFF), BIND gets "command not supported",
an unknown address type "address type not supported", a refused port "connection refused",
an unresolvable name "host unreachable", an HTTP request a 400 that says this is a SOCKS5 port;
each is recorded and counted, and the next client is served as usual."""
import json
import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (read_records, check, free_port, info, mitmd_stats, read_http_response, run,  # noqa
                     standard_setup, step, wait_until)
from socks5lib import REPLY_NAMES, curl_socks, recv_exact, socks5_connect  # noqa: E402


def raw(port, data, n=64):
    """raw sends `data` on a new connection and returns what comes back until EOF."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(data)
    got = recv_exact(s, n, timeout=5)
    s.close()
    return got


def test(env):
    body = os.urandom(1024)
    w = standard_setup(env, files={"1k": body}, origin=False, flows=True,
                       extra_args=["--mode", "socks5", "--connect-timeout", "3"])
    port = w.mitmd.port

    def records():
        return read_records(w.flows)

    def errors():
        return [r.get("error") or "" for r in records()]

    step("a SOCKS4 greeting: closed without a byte, recorded")
    got = raw(port, b"\x04\x01\x00\x50\x7f\x00\x00\x01\x00")
    check(got == b"", f"SOCKS4 greeting got {got!r}")
    check(wait_until(lambda: any("version byte is not 5" in e for e in errors()), 5),
          f"no record of the SOCKS4 greeting: {errors()}")

    step("garbage bytes: closed without a byte")
    got = raw(port, b"\x00\xff\xfe\xfd")
    check(got == b"", f"garbage got {got!r}")

    step("zero methods offered: closed")
    check(raw(port, b"\x05\x00") == b"", "a greeting with no method was answered")

    step("only username/password (RFC 1929) offered: 05 FF, then closed")
    got = raw(port, b"\x05\x01\x02")
    check(got == b"\x05\xff", f"user/pass-only greeting got {got!r}")
    check(wait_until(lambda: any("username/password" in e for e in errors()), 5),
          f"no record of the refused user/pass greeting: {errors()}")

    step("BIND: 'command not supported' (7)")
    s, method, rep = socks5_connect(port, "127.0.0.1", 80, cmd=2)
    s.close()
    check(method == b"\x05\x00" and rep == 7, f"BIND got method {method!r} reply {rep}")

    step("unknown address type: 'address type not supported' (8)")
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"\x05\x01\x00")
    check(recv_exact(s, 2) == b"\x05\x00", "no method reply")
    s.sendall(b"\x05\x01\x00\x02\x7f\x00\x00\x01\x00\x50")
    got = recv_exact(s, 10)
    s.close()
    check(len(got) == 10 and got[1] == 8, f"unknown ATYP got {got!r}")

    step("a closed port: 'connection refused' (5), recorded with the reason")
    dead = free_port()
    s, _, rep = socks5_connect(port, "127.0.0.1", dead)
    s.close()
    check(rep == 5, f"refused port got reply {rep} ({REPLY_NAMES.get(rep)})")
    check(wait_until(lambda: any("connection refused" in e and f":{dead}" in e
                                 for e in errors()), 5), f"no record of the refusal: {errors()}")

    step("an unresolvable name: 'host unreachable' (4)")
    s, _, rep = socks5_connect(port, "no-such-host.invalid", 443)
    s.close()
    check(rep == 4, f"unresolvable name got reply {rep} ({REPLY_NAMES.get(rep)})")

    step("an HTTP proxy request on the SOCKS5 port: 400 saying what the port is")
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET http://www.origin.test/ HTTP/1.1\r\nHost: www.origin.test\r\n\r\n")
    code, _, text = read_http_response(s)
    s.close()
    check(code == 400 and b"SOCKS5" in text, f"HTTP on the socks port: {code} {text[:120]!r}")

    step("a client that stops mid-request is closed and recorded")
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"\x05\x01\x00")
    recv_exact(s, 2)
    s.sendall(b"\x05\x01\x00\x03\x0fwww.ori")
    s.shutdown(socket.SHUT_WR)
    check(recv_exact(s, 10) == b"", "a truncated request got an answer")
    s.close()
    check(wait_until(lambda: any("mid-handshake" in e for e in errors()), 5),
          f"no record of the truncated request: {errors()}")

    step("the worker still serves: curl --socks5-hostname https://www.origin.test -> 200")
    code, got, err = curl_socks(env, port, f"https://www.origin.test:{w.nginx.ports['valid']}/1k",
                                cafile=w.mitmd.ca_cert)
    check(code == 200 and got == body, f"curl after the refusals got {code}: {err.strip()}")

    step("the malformed ones are counted as client errors, the failed dials as upstream errors")
    stats = {}

    def counted():
        nonlocal stats
        stats = mitmd_stats(w.mitmd)
        return stats.get("client_errors", 0) >= 5 and stats.get("upstream_errors", 0) >= 2
    check(wait_until(counted, 8, interval=0.5), f"stats {stats}")
    info(f"client_errors={stats['client_errors']} upstream_errors={stats['upstream_errors']}")
    w.mitmd.check_no_crash()


if __name__ == "__main__":
    run(test, __doc__)
