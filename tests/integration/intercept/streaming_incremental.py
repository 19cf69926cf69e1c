#!/usr/bin/env python3
"""Chunked and close-delimited (streaming) responses are relayed incrementally: the client
gets the first chunk long before the origin sends the last one (origin sleeps in between)."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (TestFailure, check, info, parse_status, proxy_connect, read_head,  # noqa
                     run, standard_setup, step, tls_over)
from origin import chunk_bytes  # noqa: E402

CHUNKS, SIZE, DELAY = 4, 100, 1.0  # the origin needs >= 3 s for the whole body
FIRST_BY = 1.5                      # the first chunk must arrive within this


def dechunk(raw):
    """dechunk decodes a complete chunked body; returns (body, complete)."""
    out, i = b"", 0
    while True:
        j = raw.find(b"\r\n", i)
        if j < 0:
            return out, False
        size = int(raw[i:j].split(b";")[0], 16)
        if size == 0:
            return out, True
        if len(raw) < j + 2 + size + 2:
            return out, False
        out += raw[j + 2:j + 2 + size]
        i = j + 2 + size + 2


def fetch(w, path, chunked):
    sock, status, _, err = proxy_connect(w.mitmd.port, "stream.origin.test", w.origin.port)
    check(status == 200, f"CONNECT answered {status}: {err[:200]!r}")
    tls = tls_over(sock, "stream.origin.test", w.mitmd.ca_cert)
    t0 = time.monotonic()
    tls.sendall(f"GET {path}?chunks={CHUNKS}&size={SIZE}&delay={DELAY} HTTP/1.1\r\n"
                f"Host: stream.origin.test\r\n\r\n".encode())
    tls.settimeout(FIRST_BY)
    first = chunk_bytes(0, SIZE)
    try:
        head, raw = read_head(tls)
        check(head, "the proxy closed the connection before the response head")
        code, _, hdrs = parse_status(head)
        check(code == 200, f"status {code}")
        is_chunked = "chunked" in hdrs.get("transfer-encoding", "").lower()

        def body_so_far():
            return dechunk(raw)[0] if is_chunked else raw
        while first not in body_so_far():
            data = tls.recv(65536)
            if not data:
                raise TestFailure("connection closed before the first chunk")
            raw += data
    except socket.timeout:
        raise TestFailure(f"first chunk not received within {FIRST_BY}s (origin needs "
                          f"{(CHUNKS - 1) * DELAY:.0f}s for all): response is being buffered")
    t_first = time.monotonic() - t0
    info(f"first chunk after {t_first:.2f}s (transfer-encoding "
         f"{hdrs.get('transfer-encoding', '-')}, content-length {hdrs.get('content-length', '-')})")
    tls.settimeout(15)
    want = b"".join(chunk_bytes(i, SIZE) for i in range(CHUNKS))
    while True:
        if is_chunked:
            body, done = dechunk(raw)
            if done:
                break
        elif "content-length" in hdrs and len(raw) >= int(hdrs["content-length"]):
            body = raw
            break
        data = tls.recv(65536)
        if not data:
            check(not is_chunked, "connection closed inside a chunked body")
            check("content-length" not in hdrs, "connection closed before Content-Length bytes")
            body = raw
            break
        raw += data
    t_all = time.monotonic() - t0
    info(f"whole body after {t_all:.2f}s")
    check(body == want, f"body differs from what the origin sent ({len(body)} vs {len(want)})")
    check(t_all >= (CHUNKS - 1) * DELAY * 0.9, f"whole body after {t_all:.2f}s: origin did not "
          "sleep?")
    if chunked:
        check(is_chunked or "content-length" not in hdrs,
              "a chunked response was re-framed with Content-Length (needs buffering)")
    tls.close()


def test(env):
    w = standard_setup(env)
    step("chunked response (Transfer-Encoding: chunked, 1 s between chunks) streams")
    fetch(w, "/chunked", chunked=True)
    step("close-delimited response (no length, ends at close, 1 s between writes) streams")
    fetch(w, "/stream", chunked=False)


if __name__ == "__main__":
    run(test, __doc__)
