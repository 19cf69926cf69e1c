#!/usr/bin/env python3
"""Malformed client input (raw garbage, a 1 MB header line, a head cut off by the client, the
same inside an intercepted tunnel) is answered 400/431 or closed; no worker dies, and a normal
request succeeds afterwards."""
import os
import re
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (TestFailure, check, curl, info, proxy_connect, recv_all, run,  # noqa: E402
                     standard_setup, step, tls_over)


def answer(sock, payload, half_close=False, timeout=5.0):
    """answer sends payload (tolerating an early close by the proxy) and returns what the
    proxy sent before closing. Fails if the proxy neither answers nor closes in time."""
    sock.settimeout(timeout)
    try:
        sock.sendall(payload)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
    except socket.timeout:
        raise TestFailure("the proxy stopped reading but neither answered nor closed")
    except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
        pass  # the proxy closed early: fine, read what it answered
    t0 = time.monotonic()
    out = b""
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            out += data
    except socket.timeout:
        raise TestFailure(f"no answer and no close within {timeout}s (got {out[:100]!r})")
    except (ConnectionResetError, ssl.SSLError):
        pass  # closed without close_notify / reset: counts as closed
    info(f"proxy answered {out[:60]!r} and closed after {time.monotonic() - t0:.2f}s")
    return out


def check_status(out, allowed, what):
    if not out:
        return  # closed without an answer is acceptable
    m = re.match(rb"HTTP/1\.[01] (\d{3})", out)
    check(m, f"{what}: the answer is not an HTTP response: {out[:100]!r}")
    check(int(m.group(1)) in allowed, f"{what}: status {m.group(1).decode()}, expected one of "
          f"{allowed}")


def plain(w):
    return socket.create_connection(("127.0.0.1", w.mitmd.port), timeout=5)


def test(env):
    w = standard_setup(env, workers=2, origin=False)
    workers = w.mitmd.wait_workers(2)
    check(workers, f"expected 2 workers, found {w.mitmd.worker_pids()}")
    port = w.nginx.ports["valid"]
    url = f"https://www.origin.test:{port}/1k"

    def still_works(after):
        code, body, err = curl(env, w.mitmd.port, url, cafile=w.mitmd.ca_cert)
        check(code == 200 and len(body) == 1024, f"after {after}: normal request got HTTP "
              f"{code} ({err.strip()})")

    step("raw garbage bytes -> 400 or close; a normal request succeeds after")
    # a fixed non-TLS first byte, so that the proxy cannot take it for a ClientHello
    out = answer(plain(w), b"\xff\xfe GARBAGE " + os.urandom(3000) + b"\r\n\r\n")
    check_status(out, (400,), "garbage")
    still_works("garbage")

    step("a 1 MB header line -> 431 (or 400) or close; a normal request succeeds after")
    big = (f"GET http://www.origin.test:{w.nginx.plain_port}/1k HTTP/1.1\r\n"
           f"Host: www.origin.test:{w.nginx.plain_port}\r\nX-Big: ").encode() + \
        b"a" * (1 << 20) + b"\r\n\r\n"
    out = answer(plain(w), big)
    check_status(out, (400, 431), "1 MB header")
    still_works("1 MB header")

    step("a 1 MB CONNECT header line -> 431 (or 400) or close")
    out = answer(plain(w), f"CONNECT www.origin.test:{port} HTTP/1.1\r\nX-Big: ".encode() +
                 b"b" * (1 << 20) + b"\r\n\r\n")
    check_status(out, (400, 431), "1 MB CONNECT header")

    step("a request head cut off by the client (half-close mid-header) -> 400 or close")
    out = answer(plain(w), f"GET http://www.origin.test:{w.nginx.plain_port}/1k HTTP/1.1\r\n"
                 f"Host: www.origin.test\r\nX-Partial: abc".encode(), half_close=True)
    check_status(out, (400,), "cut-off head")
    step("a cut-off head followed by a hard close leaves the proxy working")
    s = plain(w)
    s.sendall(b"GET http://www.origin.test/ HTTP/1.1\r\nHost: www.orig")
    s.close()
    still_works("cut-off heads")

    step("inside an intercepted tunnel: 1 MB header line -> 431/400 or close")
    sock, status, _, err = proxy_connect(w.mitmd.port, "www.origin.test", port)
    check(status == 200, f"CONNECT answered {status}: {err[:200]!r}")
    tls = tls_over(sock, "www.origin.test", w.mitmd.ca_cert)
    out = answer(tls, b"GET /1k HTTP/1.1\r\nHost: www.origin.test\r\nX-Big: " +
                 b"c" * (1 << 20) + b"\r\n\r\n")
    check_status(out, (400, 431), "1 MB header in tunnel")

    step("inside an intercepted tunnel: garbage instead of HTTP -> 400 or close")
    sock, status, _, err = proxy_connect(w.mitmd.port, "www.origin.test", port)
    check(status == 200, f"CONNECT answered {status}: {err[:200]!r}")
    tls = tls_over(sock, "www.origin.test", w.mitmd.ca_cert)
    out = answer(tls, b"\x00\x01garbage\xff\r\n\r\n")
    check_status(out, (400,), "garbage in tunnel")

    step("a non-TLS, non-HTTP byte stream after CONNECT is handled (relayed or closed)")
    sock, status, _, err = proxy_connect(w.mitmd.port, "www.origin.test", port)
    check(status == 200, f"CONNECT answered {status}: {err[:200]!r}")
    try:
        sock.sendall(b"\x16\x03\x01\x00\x05hello")  # a truncated, bogus ClientHello record
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    recv_all(sock, timeout=3)
    sock.close()

    step("no worker died: the same 2 worker pids as at start")
    still_works("all malformed inputs")
    now = w.mitmd.worker_pids()
    check(sorted(now) == sorted(workers), f"worker pids changed from {workers} to {now}: "
          "a worker died on client input")


if __name__ == "__main__":
    run(test, __doc__)
