#!/usr/bin/env python3
"""With --set proxy_protocol=true, a client behind a PROXY protocol v1 sender is shown by the
address of its header: a Python client sends 'PROXY TCP4 203.0.113.7 ...' (then TCP6, then
the header one byte per segment) before a CONNECT + TLS GET through mitmd; the exchange works,
and the console flow line and the -w record name 203.0.113.7:40001 (and [2001:db8::7]:40002),
never 127.0.0.1:<ephemeral>. 'PROXY UNKNOWN' keeps the socket's own address."""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, info, run, standard_setup, step, wait_until  # noqa: E402
from pplib import connect_exchange, read_records, v1_header  # noqa: E402


def test(env):
    body = os.urandom(1024)
    w = standard_setup(env, flows=True, files={"1k": body}, origin=False,
                       extra_args=["--set", "proxy_protocol=true"])
    port = w.nginx.ports["valid"]
    host = "www.origin.test"
    cases = [  # (header, expected client in the flow line, address, port in the record)
        (v1_header("203.0.113.7", "192.0.2.1", 40001, 443), "203.0.113.7:40001",
         "203.0.113.7", 40001, False),
        (v1_header("2001:db8::7", "2001:db8::1", 40002, 443), "[2001:db8::7]:40002",
         "2001:db8::7", 40002, False),
        (v1_header("198.51.100.9", "192.0.2.1", 65535, 8080), "198.51.100.9:65535",
         "198.51.100.9", 65535, True),
    ]
    for hdr, shown, _, _, split in cases:
        step(f"{hdr!r}{' one byte per segment' if split else ''} + CONNECT {host}:{port} + "
             "TLS GET /1k -> 200 and the file")
        status, got, _ = connect_exchange(w.mitmd.port, hdr, host, port, w.mitmd.ca_cert,
                                          split=split)
        check(status == 200 and got == body, f"GET /1k: {status}, {len(got)} bytes")

    step("'PROXY UNKNOWN' (the sender does not know) -> the socket's own address is kept")
    status, got, local = connect_exchange(w.mitmd.port, b"PROXY UNKNOWN\r\n", host, port,
                                          w.mitmd.ca_cert)
    check(status == 200 and got == body, f"GET /1k after UNKNOWN: {status}")
    unknown_shown = f"{local[0]}:{local[1]}"

    url = re.escape(f"https://{host}:{port}/1k")
    for _, shown, _, _, _ in cases + [(None, unknown_shown, None, None, None)]:
        step(f"the console flow line names {shown}")
        pat = re.compile(r"^" + re.escape(shown) + r": GET " + url + r" HTTP/1\.1 << 200 ",
                         re.M)
        m = wait_until(lambda: pat.search(w.mitmd.stdout()), 5)
        check(m, f"no flow line matching {pat.pattern!r}:\n{w.mitmd.stdout()}")
        info(m.group(0))
    lines = [ln for ln in w.mitmd.stdout().splitlines() if " GET " in ln]
    check(len(lines) == 4, f"{len(lines)} GET flow lines, expected 4:\n{w.mitmd.stdout()}")

    step("the -w records name the header's client address and port")
    w.mitmd.stop()
    recs = [r for r in read_records(w.flows) if r["request"]["method"] == "GET"]
    check(len(recs) == 4, f"{len(recs)} GET records, expected 4")
    got_clients = sorted((r["client"]["address"], r["client"]["port"]) for r in recs)
    want = sorted([(a, p) for _, _, a, p, _ in cases] + [(local[0], local[1])])
    check(got_clients == want, f"record clients {got_clients}, expected {want}")
    for r in recs:
        check(r["error"] in (None, ""), f"record with an error: {r['error']!r}")


if __name__ == "__main__":
    run(test, __doc__)
