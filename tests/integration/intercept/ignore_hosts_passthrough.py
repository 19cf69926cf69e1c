#!/usr/bin/env python3
"""--ignore-hosts '^ignored\\.test$' passes matching hosts through untouched: the client sees
the origin's real certificate (issuer = test origin CA) while other hosts are intercepted."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (cert_issuer_subject, cert_text, check, info, proxy_connect,  # noqa: E402
                     read_http_response, run, s_client_chain, standard_setup, step, tls_over)


def test(env):
    body = os.urandom(1024)
    w = standard_setup(env, files={"1k": body}, origin=False,
                       extra_args=["--ignore-hosts", r"^ignored\.test$",
                                   "--resolve", "ignored.test=127.0.0.1"])
    port = w.nginx.ports["valid"]
    _, origin_ca = cert_issuer_subject(cert_text(open(w.pki.ca_cert).read()))
    _, mitmd_ca = cert_issuer_subject(cert_text(open(w.mitmd.ca_cert).read()))

    step("ignored.test: s_client sees the origin's real certificate (issuer test origin CA)")
    chain = s_client_chain(w.mitmd.port, "ignored.test", port, servername="ignored.test")
    issuer, subject = cert_issuer_subject(cert_text(chain[0]))
    info(f"ignored.test leaf: subject {subject!r}, issuer {issuer!r}")
    check(issuer == origin_ca, f"issuer {issuer!r}, expected the origin CA {origin_ca!r}")
    with open(w.pki.certs["valid"][0]) as f:
        real = f.read().strip()
    check(chain[0].strip() == real, "the leaf is not byte-identical to the origin's certificate")

    step("ignored.test: a client trusting only the origin CA completes TLS and GETs /1k")
    sock, status, _, err = proxy_connect(w.mitmd.port, "ignored.test", port)
    check(status == 200, f"CONNECT ignored.test answered {status}: {err[:200]!r}")
    tls = tls_over(sock, "ignored.test", w.pki.ca_cert)
    tls.sendall(b"GET /1k HTTP/1.1\r\nHost: ignored.test\r\nConnection: close\r\n\r\n")
    code, _, data = read_http_response(tls)
    check(code == 200 and data == body, f"passthrough GET: {code}, {len(data)} bytes")
    tls.close()

    step("www.origin.test (not ignored) is still intercepted (issuer = mitmd CA)")
    chain = s_client_chain(w.mitmd.port, "www.origin.test", port, servername="www.origin.test")
    issuer, _ = cert_issuer_subject(cert_text(chain[0]))
    check(issuer == mitmd_ca, f"issuer {issuer!r}, expected the mitmd CA {mitmd_ca!r}")


if __name__ == "__main__":
    run(test, __doc__)
