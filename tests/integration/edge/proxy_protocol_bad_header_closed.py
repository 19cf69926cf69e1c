#!/usr/bin/env python3
"""With --set proxy_protocol=true, a connection that does not start with a valid PROXY header
is closed without an answer, recorded as a flow with the reason and counted as a client error:
a plain CONNECT (no header), an HTTP request, a malformed v1 line, a v2 header with a bad
version, a v1 header cut by the client's close, silence past --request-timeout and half a
header past it. A connection that opens and closes without a byte (a balancer's TCP check) is
neither recorded nor counted. A valid header still works on the same listener afterwards."""
import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (check, info, recv_all, run, standard_setup, step,  # noqa: E402
                     wait_stat)
from pplib import V2_SIG, connect_exchange, read_records, v1_header  # noqa: E402


def closed_unanswered(port, data, half_close=False, wait=10.0):
    """closed_unanswered sends data and returns (bytes received before EOF, seconds to EOF)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    t0 = time.monotonic()
    if data:
        sock.sendall(data)
    if half_close:
        sock.shutdown(socket.SHUT_WR)
    out = recv_all(sock, timeout=wait)
    took = time.monotonic() - t0
    sock.close()
    return out, took


def test(env):
    body = os.urandom(1024)
    w = standard_setup(env, flows=True, files={"1k": body}, origin=False,
                       extra_args=["--set", "proxy_protocol=true", "--request-timeout", "2"])
    port = w.nginx.ports["valid"]
    host = "www.origin.test"
    connect = f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    bad = [  # (note, bytes, half-close after sending, the reason in the record)
        ("a CONNECT without a header", connect, False, "not a PROXY protocol header"),
        ("an HTTP request", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", False,
         "not a PROXY protocol header"),
        ("a v1 line with a heading-zero port",
         b"PROXY TCP4 203.0.113.7 192.0.2.1 040001 443\r\n" + connect, False, "port malformed"),
        ("a v2 header of version 3", V2_SIG + b"\x31\x11\x00\x0c" + bytes(12) + connect, False,
         "version"),
        ("a v1 header cut by the client's close", b"PROXY TCP4 203.0.113.7 192.0", True,
         "closed inside the PROXY protocol header"),
    ]
    for note, data, half, _ in bad:
        step(f"{note} -> closed, nothing answered")
        out, took = closed_unanswered(w.mitmd.port, data, half)
        check(out == b"", f"mitmd answered {out[:80]!r}")
        check(took < 1.5, f"the close took {took:.1f}s (expected at once)")

    step("silence, then half a header: each closed after --request-timeout 2")
    out, took = closed_unanswered(w.mitmd.port, b"", wait=8)
    check(out == b"" and 1.0 <= took < 6, f"silent connection: {out!r} after {took:.1f}s")
    out, took = closed_unanswered(w.mitmd.port, b"PROXY TCP6 2001:db8::", wait=8)
    check(out == b"" and 1.0 <= took < 6, f"half a header: {out!r} after {took:.1f}s")
    bad.append(("silence", None, None, "no PROXY protocol header within --request-timeout"))
    bad.append(("half a header", None, None, "incomplete after --request-timeout"))

    step("a connection opened and closed without a byte (a TCP health check) is not an error")
    s = socket.create_connection(("127.0.0.1", w.mitmd.port), timeout=5)
    s.close()

    step("a valid header still works on the same listener")
    status, got, _ = connect_exchange(w.mitmd.port, v1_header("203.0.113.9", "192.0.2.1", 1234,
                                                              443), host, port, w.mitmd.ca_cert)
    check(status == 200 and got == body, f"valid header afterwards: {status}")

    step(f"the stats count {len(bad)} client errors")
    stats = wait_stat(w.mitmd, "client_errors", len(bad), timeout=6)
    check(stats.get("client_errors") == len(bad),
          f"client_errors={stats.get('client_errors')}, expected {len(bad)}: {stats}")

    step("each refusal is a console line '127.0.0.1:PORT: <invalid request> << error: ...'")
    out = w.mitmd.stdout()
    for note, _, _, why in bad:
        pat = re.compile(r"^127\.0\.0\.1:\d+: <invalid request> << error: .*" + re.escape(why),
                         re.M)
        m = pat.search(out)
        check(m, f"{note}: no console line matching {pat.pattern!r}:\n{out}")
        info(m.group(0))

    step("and a -w record with the reason, the balancer's socket as client, no response")
    w.mitmd.stop()
    recs = read_records(w.flows)
    errs = [r for r in recs if r.get("error")]
    check(len(errs) == len(bad), f"{len(errs)} error records, expected {len(bad)}: "
          f"{[r.get('error') for r in recs]}")
    for note, _, _, why in bad:
        hit = [r for r in errs if why in r["error"]]
        want = sum(1 for b in bad if b[3] == why)
        check(len(hit) == want, f"{note}: {len(hit)} records with {why!r}, expected {want}")
        for r in hit:
            check(r["client"]["address"] == "127.0.0.1", f"{note}: client {r['client']}")
            check(not r.get("response"), f"{note}: response {r.get('response')!r}")
    check(len(recs) == len(bad) + 1, f"{len(recs)} records, expected {len(bad) + 1} (the "
          "health check must not be recorded)")


if __name__ == "__main__":
    run(test, __doc__)
