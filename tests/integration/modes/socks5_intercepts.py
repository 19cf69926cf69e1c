#!/usr/bin/env python3
"""--mode socks5: curl --socks5-hostname (domain), --socks5 (IPv4) and a hand-written client
(IPv6 [::1]) get the origin's bytes; HTTPS is intercepted (the certificate is forged by the
mitmd CA, a client trusting only the origin CA refuses it), plain HTTP is relayed, and every
exchange leaves a flow line and a JSON record."""
import hashlib
import json
import os
import re
import socket
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (read_records, cert_issuer_subject, cert_text, check, info, read_http_response,  # noqa
                     run, standard_setup, step, tls_over, wait_until)
from socks5lib import curl_socks, socks5_connect  # noqa: E402


def v6_server(body):
    """v6_server serves `body` for any GET over plain HTTP/1.1 on [::1] (one request per
    connection). Returns (port, stop)."""
    srv = socket.socket(socket.AF_INET6)
    srv.bind(("::1", 0))
    srv.listen(8)

    def serve():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                         % len(body) + body)
            conn.close()
    threading.Thread(target=serve, daemon=True).start()
    return srv.getsockname()[1], srv.close


def sha(b):
    return hashlib.sha256(b).hexdigest()


def test(env):
    body = os.urandom(64 * 1024)
    w = standard_setup(env, files={"64k": body}, origin=False, flows=True,
                       extra_args=["--mode", "socks5"])
    port = w.nginx.ports["valid"]

    def records():
        return read_records(w.flows)

    step("curl --socks5-hostname https://www.origin.test/64k -> 200, same SHA-256")
    url = f"https://www.origin.test:{port}/64k"
    code, got, err = curl_socks(env, w.mitmd.port, url, cafile=w.mitmd.ca_cert)
    check(code == 200, f"curl got {code}: {err.strip()}")
    check(sha(got) == sha(body), f"body SHA-256 differs ({len(got)} bytes)")

    step("a client trusting only the origin CA refuses the forged certificate")
    code, _, err = curl_socks(env, w.mitmd.port, url, cafile=w.pki.ca_cert)
    check(code == 0 and ("certificate" in err.lower() or "SSL" in err),
          f"curl trusting the origin CA only got {code}: {err.strip()}")

    step("the certificate behind SOCKS5 is issued by the mitmd CA for the requested name")
    sock, method, rep = socks5_connect(w.mitmd.port, "www.origin.test", port)
    check(method == b"\x05\x00" and rep == 0, f"SOCKS5 handshake: method {method!r}, reply {rep}")
    tls = tls_over(sock, "www.origin.test", w.mitmd.ca_cert)
    issuer, subject = cert_issuer_subject(cert_text(tls.getpeercert(binary_form=True), der=True))
    ca_issuer, ca_subject = cert_issuer_subject(cert_text(open(w.mitmd.ca_cert).read()))
    info(f"leaf issuer {issuer!r}, mitmd CA subject {ca_subject!r}")
    check(issuer == ca_subject, f"leaf issuer {issuer!r} is not the mitmd CA {ca_subject!r}")
    tls.sendall(b"GET /64k HTTP/1.1\r\nHost: www.origin.test\r\nConnection: close\r\n\r\n")
    code, _, data = read_http_response(tls)
    check(code == 200 and sha(data) == sha(body), f"GET over the socket: {code}")
    tls.close()

    step("curl --socks5 https://127.0.0.1 (an IPv4 target, no SNI) -> 200")
    code, got, err = curl_socks(env, w.mitmd.port, f"https://127.0.0.1:{port}/64k",
                                hostname=False, cafile=w.mitmd.ca_cert)
    check(code == 200 and sha(got) == sha(body), f"curl --socks5 IPv4 got {code}: {err.strip()}")

    step("plain HTTP through SOCKS5 is relayed and recorded")
    code, got, err = curl_socks(env, w.mitmd.port, f"http://www.origin.test:{w.nginx.plain_port}"
                                "/64k")
    check(code == 200 and sha(got) == sha(body), f"plain HTTP via SOCKS5 got {code}: {err}")

    step("an IPv6 target [::1] (ATYP 4): curl --socks5 http://[::1]:PORT/")
    v6body = b"hello over IPv6\n"
    v6port, stop_v6 = v6_server(v6body)
    code, got, err = curl_socks(env, w.mitmd.port, f"http://[::1]:{v6port}/v6", hostname=False)
    check(code == 200 and got == v6body, f"IPv6 target got {code} {got!r}: {err.strip()}")
    stop_v6()

    step("flow lines and records for each exchange")
    out_pat = [
        re.compile(r"127\.0\.0\.1:\d+: GET https://www\.origin\.test:%d/64k HTTP/1\.1 << 200"
                   % port),
        re.compile(r"GET https://127\.0\.0\.1:%d/64k HTTP/1\.1 << 200" % port),
        re.compile(r"GET http://www\.origin\.test:%d/64k HTTP/1\.1 << 200" % w.nginx.plain_port),
        re.compile(r"GET http://\[::1\]:%d/v6 HTTP/1\.1 << 200" % v6port),
    ]
    for pat in out_pat:
        check(wait_until(lambda: pat.search(w.mitmd.stdout()), 5),
              f"no flow line /{pat.pattern}/ in:\n{w.mitmd.stdout()}")
    # the flow line and the -w record are separate writes: the record can land a moment later
    def ok_records():
        return [r for r in records() if (r.get("response") or {}).get("status") == 200]
    wait_until(lambda: len(ok_records()) >= 5, 5)
    recs = records()
    ok = [r for r in recs if (r.get("response") or {}).get("status") == 200]
    check(len(ok) >= 5, f"expected >= 5 records with 200, got {len(ok)}: {recs}")
    tls_recs = [r for r in ok if r["request"]["url"].startswith("https://www.origin.test")]
    check(tls_recs and tls_recs[0]["response"]["bodySize"] == len(body),
          f"record of the intercepted GET: {tls_recs[:1]}")
    check(all(r.get("error") in (None, "") for r in ok), "a 200 record carries an error")
    refused = [r for r in recs if "does not trust" in (r.get("error") or "")]
    check(refused and refused[0]["request"]["method"] == "CONNECT",
          f"the refused handshake is recorded as the SOCKS5 CONNECT: {refused}")


if __name__ == "__main__":
    run(test, __doc__)
