#!/usr/bin/env python3
"""What follows a CONNECT that is not intercepted is still visible: an --ignore-hosts
passthrough and a stream that is neither TLS nor HTTP are relayed raw and each leave one flow
line and one record (the CONNECT, why, bytes each way); malformed HTTP inside a tunnel
(Content-Length with Transfer-Encoding, obs-fold) is answered 400 with the reason instead of
being tunnelled raw; an SSLv2-format ClientHello is refused (the origin's own certificate must
not reach the client uninspected) and recorded."""
import json
import os
import re
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (read_records, check, info, proxy_connect, read_http_response, recv_all, run,  # noqa
                     standard_setup, step, tls_over, wait_until)


def echo_server():
    """echo_server returns (port, stop) for a TCP server that echoes one read back, then
    closes: a protocol that is neither TLS nor HTTP."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    import threading

    def serve():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            data = conn.recv(65536)
            conn.sendall(data[::-1])
            conn.close()
    threading.Thread(target=serve, daemon=True).start()
    return srv.getsockname()[1], srv.close


def test(env):
    body = os.urandom(1024)
    w = standard_setup(env, files={"1k": body}, origin=False, flows=True,
                       extra_args=["--ignore-hosts", r"^ignored\.test$",
                                   "--resolve", "ignored.test=127.0.0.1"])
    port = w.nginx.ports["valid"]
    echo_port, stop_echo = echo_server()

    def records():
        return read_records(w.flows)

    step("--ignore-hosts passthrough: GET through the raw tunnel, then one record for it")
    sock, status, _, err = proxy_connect(w.mitmd.port, "ignored.test", port)
    check(status == 200, f"CONNECT answered {status}: {err[:200]!r}")
    tls = tls_over(sock, "ignored.test", w.pki.ca_cert)
    tls.sendall(b"GET /1k HTTP/1.1\r\nHost: ignored.test\r\nConnection: close\r\n\r\n")
    code, _, data = read_http_response(tls)
    check(code == 200 and data == body, f"passthrough GET: {code}, {len(data)} bytes")
    tls.close()
    check(wait_until(lambda: any("--ignore-hosts" in (r["response"]["statusText"] or "")
                                 for r in records()), 5), f"no passthrough record: {records()}")
    rec = [r for r in records() if "--ignore-hosts" in r["response"]["statusText"]][0]
    check(rec["request"]["method"] == "CONNECT" and f"ignored.test:{port}" in rec["request"]["url"],
          f"passthrough record names {rec['request']}")
    check(rec["request"]["bodySize"] > 100 and rec["response"]["bodySize"] > len(body),
          f"bytes each way {rec['request']['bodySize']} / {rec['response']['bodySize']}")
    line = re.compile(r"CONNECT ignored\.test:%d HTTP/1\.1 << 200 passthrough \(--ignore-hosts\)"
                      % port)
    check(wait_until(lambda: line.search(w.mitmd.stdout()), 3),
          f"no flow line for the passthrough:\n{w.mitmd.stdout()}")

    step("neither TLS nor HTTP after CONNECT: relayed raw, recorded with the bytes")
    sock, status, _, err = proxy_connect(w.mitmd.port, "127.0.0.1", echo_port)
    check(status == 200, f"CONNECT to the echo server answered {status}")
    sock.sendall(b"\x00\x01binary-protocol\xff")
    got = recv_all(sock, timeout=5)
    sock.close()
    check(got == b"\x00\x01binary-protocol\xff"[::-1], f"echo through the tunnel: {got!r}")
    check(wait_until(lambda: any("neither TLS nor HTTP" in r["response"]["statusText"]
                                 for r in records()), 5), f"no raw record: {records()}")
    rec = [r for r in records() if "neither TLS nor HTTP" in r["response"]["statusText"]][0]
    check(rec["request"]["bodySize"] == 18 and rec["response"]["bodySize"] == 18,
          f"bytes each way {rec['request']['bodySize']} / {rec['response']['bodySize']}")

    for name, req in [
        ("Content-Length with Transfer-Encoding",
         b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
        ("obs-fold", b"GET /x HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n folded\r\n\r\n"),
    ]:
        step(f"malformed HTTP inside a CONNECT ({name}) -> 400 with the reason, recorded")
        n_before = len(records())
        sock, status, _, err = proxy_connect(w.mitmd.port, "www.origin.test", w.nginx.plain_port)
        check(status == 200, f"CONNECT answered {status}")
        sock.sendall(req)
        code, head, text = read_http_response(sock)
        sock.close()
        info(f"{name}: HTTP {code} {text[:100]!r}")
        check(code == 400, f"{name}: expected 400, got {code}")
        check(wait_until(lambda: len(records()) > n_before, 5), "no record for the 400")
        check(records()[-1]["response"]["status"] == 400, f"record {records()[-1]['response']}")

    step("an SSLv2-format ClientHello after CONNECT is refused, not relayed, and recorded")
    sock, status, _, err = proxy_connect(w.mitmd.port, "ignored.test", port)
    check(status == 200, f"CONNECT answered {status}")
    # SSLv2 CLIENT-HELLO: length 0x80|len, type 1, version 3.1, cipher specs, session, challenge
    specs = bytes.fromhex("00002f000035")
    challenge = os.urandom(16)
    payload = b"\x01\x03\x01" + len(specs).to_bytes(2, "big") + b"\x00\x00" + \
        len(challenge).to_bytes(2, "big") + specs + challenge
    sock.sendall(bytes([0x80 | (len(payload) >> 8), len(payload) & 0xff]) + payload)
    got = recv_all(sock, timeout=5)
    sock.close()
    check(got == b"", f"the SSLv2 hello got {len(got)} bytes back (relayed to the origin?)")
    check(wait_until(lambda: any("SSLv2" in (r.get("error") or "") for r in records()), 5),
          f"no record of the refused SSLv2 hello: {records()[-1:]}")
    stop_echo()


if __name__ == "__main__":
    run(test, __doc__)
