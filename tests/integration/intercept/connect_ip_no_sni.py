#!/usr/bin/env python3
"""CONNECT 127.0.0.1:PORT with a client that sends no SNI is intercepted: the forged cert
carries the upstream certificate's names plus IP 127.0.0.1, and requests work."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (cert_issuer_subject, cert_sans, cert_text, check, info,  # noqa: E402
                     proxy_connect, read_http_response, run, s_client_chain, standard_setup,
                     step, tls_over)


def test(env):
    body = os.urandom(1024)
    w = standard_setup(env, files={"1k": body}, origin=False)
    port = w.nginx.ports["valid"]

    step("openssl s_client -noservername via CONNECT 127.0.0.1: forged leaf with IP 127.0.0.1")
    chain = s_client_chain(w.mitmd.port, "127.0.0.1", port, servername=None)
    text = cert_text(chain[0])
    sans = cert_sans(text)
    issuer, _ = cert_issuer_subject(text)
    _, ca_subject = cert_issuer_subject(cert_text(open(w.mitmd.ca_cert).read()))
    info(f"SANs {sans}, issuer {issuer!r}")
    check(issuer == ca_subject, f"issuer {issuer!r} is not the mitmd CA {ca_subject!r}")
    check("IP Address:127.0.0.1" in sans, f"IP Address:127.0.0.1 missing from {sans}")
    for name in ("DNS:origin.test", "DNS:*.origin.test"):
        check(name in sans, f"upstream name {name} missing from {sans}")

    step("Python client (no SNI for an IP) verifies the forged cert for 127.0.0.1 and GETs")
    sock, status, _, err = proxy_connect(w.mitmd.port, "127.0.0.1", port)
    check(status == 200, f"CONNECT 127.0.0.1:{port} answered {status}: {err[:200]!r}")
    tls = tls_over(sock, "127.0.0.1", w.mitmd.ca_cert)
    tls.sendall(b"GET /1k HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    code, _, data = read_http_response(tls)
    check(code == 200 and data == body, f"GET over the no-SNI tunnel: {code}, {len(data)} bytes")
    tls.close()


if __name__ == "__main__":
    run(test, __doc__)
