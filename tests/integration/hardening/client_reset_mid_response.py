#!/usr/bin/env python3
"""A client that half-closes (FIN) while its response is still flowing and then resets the
connection (close with unread data: RST) must not leave its connection - and the upstream
connection behind it - open until the idle timeout. mitmd told the relay about the EOF and
then ignored the later send failure: the response waited on a dead socket for 60 s (seen as
`active` connections left over after h2load runs that cut 100 KiB responses).

Checks, through the real path (CONNECT, forged certificate, nginx origin, 8 MiB body): the
flow record for the cut exchange carries an error, and mitmd_connections_active from the
metrics listener returns to 0 within 3 s (the idle timeout is 60 s)."""
import os
import re
import socket
import struct
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (check, client_context, free_port, info, read_head, read_records,  # noqa: E402
                     run, standard_setup, step, wait_until)


def active(metrics_port):
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    # one sample per listener ({listener=...,mode=...}): the sum
    vals = re.findall(r"^mitmd_connections_active(?:\{[^}]*\})? (\d+)", text, re.M)
    return sum(int(v) for v in vals) if vals else -1


def test(env):
    mport = free_port()
    w = standard_setup(env, workers=1, flows=True, files={"big": os.urandom(8 << 20)},
                       extra_args=["--set", f"metrics_listen=127.0.0.1:{mport}",
                                   "--idle-timeout", "60"])
    m = w.mitmd
    port = w.nginx.ports["valid"]

    step("CONNECT, TLS with the forged certificate, GET /big (8 MiB), read 64 KiB")
    raw = socket.create_connection(("127.0.0.1", m.port), timeout=10)
    raw.sendall(f"CONNECT www.origin.test:{port} HTTP/1.1\r\nHost: www.origin.test:{port}"
                f"\r\n\r\n".encode())
    head, _ = read_head(raw)
    check(head.startswith(b"HTTP/1.1 200"), f"CONNECT answered {head[:40]!r}")
    tls = client_context(m.ca_cert).wrap_socket(raw, server_hostname="www.origin.test")
    tls.sendall(b"GET /big HTTP/1.1\r\nHost: www.origin.test\r\n\r\n")
    got = 0
    while got < 65536:
        chunk = tls.recv(65536)
        check(chunk, "the response ended early")
        got += len(chunk)
    check(wait_until(lambda: active(mport) == 1, 3), "mitmd does not count the connection")

    step("half-close (FIN), then close with unread data (RST)")
    # (the SSLSocket owns the descriptor now; its shutdown() is the TCP one, no close_notify)
    tls.shutdown(socket.SHUT_WR)
    time.sleep(0.3)  # mitmd sees the EOF and goes on sending the response
    tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    tls.close()
    t0 = time.monotonic()

    step("the connection and its upstream end at once, not after the 60 s idle timeout")
    gone = wait_until(lambda: active(mport) == 0, 3)
    info(f"mitmd_connections_active = {active(mport)} {time.monotonic() - t0:.2f} s after the RST")
    check(gone, "the connection is still open 3 s after the client reset it")
    recs = wait_until(lambda: [r for r in read_records(w.flows)
                               if r.get("request", {}).get("url", "").endswith("/big")] or None, 3)
    check(recs, "no flow record for GET /big")
    info(f"record error: {recs[0].get('error')!r}")
    check(recs[0].get("error"), "the cut exchange's record has no error")
    m.check_no_crash()


if __name__ == "__main__":
    run(test, __doc__)
