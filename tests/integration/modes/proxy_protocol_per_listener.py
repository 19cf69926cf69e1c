#!/usr/bin/env python3
"""`--set proxy_protocol_listeners=SPEC` turns the PROXY protocol on for one listener only
(as nginx's `listen ... proxy_protocol` or HAProxy's `bind ... accept-proxy`): one mitmd with
`--mode regular@P1 --mode regular@P2` and the option naming regular@P1. On P1 a PROXY v2
header + CONNECT + TLS GET gets the origin's bytes, and the flow line and -w record name the
header's client; a connection without a header is closed and recorded. On P2 a plain CONNECT
works with the socket's address recorded, and a PROXY header is not honoured (the request
fails, no record carries the header's address). A spec that names no listener: exit 2."""
import os
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "edge"))
from harness import (TestFailure, check, free_ports, info, read_head, run,  # noqa: E402
                     standard_setup, step, wait_until)
from pplib import connect_exchange, read_records, v2_header  # noqa: E402


def test(env):
    body = os.urandom(1024)
    p1, p2 = free_ports(2)
    spec1, spec2 = f"regular@{p1}", f"regular@{p2}"
    w = standard_setup(env, flows=True, files={"1k": body}, origin=False,
                       extra_args=["--mode", spec1, "--mode", spec2,
                                   "--set", f"proxy_protocol_listeners={spec1}"])
    host, port = "www.origin.test", w.nginx.ports["valid"]

    step(f"{spec1}: PROXY v2 from 203.0.113.20:50001 + CONNECT + TLS GET /1k -> 200")
    status, got, _ = connect_exchange(p1, v2_header("203.0.113.20", "192.0.2.1", 50001, 443),
                                      host, port, w.mitmd.ca_cert)
    check(status == 200 and got == body, f"GET /1k on {spec1}: {status}, {len(got)} bytes")

    step(f"{spec2}: plain CONNECT + TLS GET /1k -> 200 (no header expected)")
    status, got, local2 = connect_exchange(p2, b"", host, port, w.mitmd.ca_cert)
    check(status == 200 and got == body, f"GET /1k on {spec2}: {status}, {len(got)} bytes")

    step(f"{spec2}: a PROXY v2 header is not honoured there (the CONNECT fails)")
    try:
        status, _, _ = connect_exchange(p2, v2_header("198.51.100.7", "192.0.2.1", 4242, 443),
                                        host, port, w.mitmd.ca_cert)
        check(False, f"a PROXY header on {spec2} was accepted ({status})")
    except TestFailure as e:
        if "accepted" in str(e):
            raise
        info(f"refused as expected: {e}")

    step(f"{spec1}: a connection with no PROXY header is closed without an answer")
    s = socket.create_connection(("127.0.0.1", p1), timeout=10)
    s.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    head, _ = read_head(s)
    s.close()
    check(not head.startswith(b"HTTP/1.1 200"), f"{spec1} answered a headerless CONNECT: {head!r}")

    step("records: the header's client only on the PROXY listener")
    want = {("203.0.113.20", 50001, spec1), (local2[0], local2[1], spec2)}

    def got_clients():
        return {(r["client"]["address"], r["client"]["port"], r["client"].get("proxy_mode"))
                for r in read_records(w.flows) if r["request"]["method"] == "GET"}
    check(wait_until(lambda: want <= got_clients(), 5), f"GET records {got_clients()}, want {want}")
    check(not any(r["client"]["address"] == "198.51.100.7" for r in read_records(w.flows)),
          f"a record on {spec2} took the header's address")

    step("--set proxy_protocol_listeners naming no listener: exit 2, one line")
    cp = subprocess.run([env.mitmd_bin, "--confdir", env.path("c2"), "-p", "0", "--mode",
                         spec1, "--set", "proxy_protocol_listeners=socks5@1"],
                        capture_output=True, text=True, timeout=20)
    check(cp.returncode == 2 and "proxy_protocol_listeners=socks5@1" in cp.stderr,
          f"expected exit 2 naming the spec: {cp.returncode} {cp.stderr!r}")
    w.mitmd.check_no_crash()


if __name__ == "__main__":
    run(test, __doc__)
