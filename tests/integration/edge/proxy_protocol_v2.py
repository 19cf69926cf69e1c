#!/usr/bin/env python3
"""With --set proxy_protocol=true, PROXY protocol v2 (binary) headers name the client: TCP over
IPv4 with TLVs (ALPN, authority, NOOP padding: skipped), TCP over IPv6, the header written one
byte per segment, and LOCAL (a balancer's own connection: the socket's address stands). Each
CONNECT + TLS GET through mitmd works and its console line and -w record show the header's
address and port."""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, info, run, standard_setup, step, wait_until  # noqa: E402
from pplib import connect_exchange, read_records, tlv, v2_header  # noqa: E402


def test(env):
    body = os.urandom(1024)
    w = standard_setup(env, flows=True, files={"1k": body}, origin=False,
                       extra_args=["--set", "proxy_protocol=true"])
    port = w.nginx.ports["valid"]
    host = "www.origin.test"
    tlvs = tlv(0x01, b"h2") + tlv(0x02, b"www.origin.test") + tlv(0x04, b"\x00" * 300)
    cases = [  # (note, header, flow-line client, record address, record port, split)
        ("TCP4 with TLVs", v2_header("203.0.113.20", "192.0.2.1", 50001, 443, tlvs),
         "203.0.113.20:50001", "203.0.113.20", 50001, False),
        ("TCP6", v2_header("2001:db8:1::20", "2001:db8::1", 50002, 443),
         "[2001:db8:1::20]:50002", "2001:db8:1::20", 50002, False),
        ("TCP4, one byte per segment", v2_header("198.51.100.20", "192.0.2.1", 1, 443),
         "198.51.100.20:1", "198.51.100.20", 1, True),
    ]
    for note, hdr, _, _, _, split in cases:
        step(f"v2 {note} ({len(hdr)} bytes) + CONNECT {host}:{port} + TLS GET /1k -> 200")
        status, got, _ = connect_exchange(w.mitmd.port, hdr, host, port, w.mitmd.ca_cert,
                                          split=split)
        check(status == 200 and got == body, f"GET /1k: {status}, {len(got)} bytes")

    step("v2 LOCAL (the balancer's own connection) -> the socket's address is kept")
    status, got, local = connect_exchange(w.mitmd.port, v2_header(local=True), host, port,
                                          w.mitmd.ca_cert)
    check(status == 200 and got == body, f"GET /1k after LOCAL: {status}")
    cases.append(("LOCAL", None, f"{local[0]}:{local[1]}", local[0], local[1], False))

    url = re.escape(f"https://{host}:{port}/1k")
    for _, _, shown, _, _, _ in cases:
        step(f"the console flow line names {shown}")
        pat = re.compile(r"^" + re.escape(shown) + r": GET " + url + r" HTTP/1\.1 << 200 ",
                         re.M)
        m = wait_until(lambda: pat.search(w.mitmd.stdout()), 5)
        check(m, f"no flow line matching {pat.pattern!r}:\n{w.mitmd.stdout()}")
        info(m.group(0))

    step("the -w records name the header's client address and port")
    w.mitmd.stop()
    recs = [r for r in read_records(w.flows) if r["request"]["method"] == "GET"]
    got_clients = sorted((r["client"]["address"], r["client"]["port"]) for r in recs)
    want = sorted((a, p) for _, _, _, a, p, _ in cases)
    check(got_clients == want, f"record clients {got_clients}, expected {want}")


if __name__ == "__main__":
    run(test, __doc__)
