#!/usr/bin/env python3
"""--allow-hosts REGEX (mitmproxy's opposite of --ignore-hosts): only matching hosts are
intercepted; every other host is passed through untouched, its real certificate reaching the
client, and the passthrough is recorded."""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (cert_issuer_subject, cert_text, check, info, proxy_connect,  # noqa
                     read_http_response, run, s_client_chain, standard_setup, step, tls_over,
                     wait_until)


def test(env):
    w = standard_setup(env, origin=False,
                       extra_args=["--allow-hosts", r"^www\.origin\.test$"])
    port = w.nginx.ports["valid"]
    _, origin_ca = cert_issuer_subject(cert_text(open(w.pki.ca_cert).read()))
    _, mitmd_ca = cert_issuer_subject(cert_text(open(w.mitmd.ca_cert).read()))

    step("www.origin.test matches --allow-hosts: intercepted (issuer = mitmd CA)")
    chain = s_client_chain(w.mitmd.port, "www.origin.test", port, servername="www.origin.test")
    issuer, _ = cert_issuer_subject(cert_text(chain[0]))
    check(issuer == mitmd_ca, f"issuer {issuer!r}, expected the mitmd CA {mitmd_ca!r}")

    step("api.origin.test does not match: passed through (issuer = the origin's CA)")
    chain = s_client_chain(w.mitmd.port, "api.origin.test", port, servername="api.origin.test")
    issuer, subject = cert_issuer_subject(cert_text(chain[0]))
    info(f"api.origin.test leaf: {subject!r} from {issuer!r}")
    check(issuer == origin_ca, f"issuer {issuer!r}, expected the origin CA {origin_ca!r}")
    step("a GET to api.origin.test trusting only the origin CA works and is recorded")
    sock, status, _, err = proxy_connect(w.mitmd.port, "api.origin.test", port)
    check(status == 200, f"CONNECT answered {status}: {err[:200]!r}")
    tls = tls_over(sock, "api.origin.test", w.pki.ca_cert)
    tls.sendall(b"GET /1k HTTP/1.1\r\nHost: api.origin.test\r\nConnection: close\r\n\r\n")
    code, _, data = read_http_response(tls)
    check(code == 200 and len(data) == 1024, f"passthrough GET: {code}, {len(data)} bytes")
    tls.close()
    line = re.compile(r"CONNECT api\.origin\.test:%d HTTP/1\.1 << 200 passthrough \(not in "
                      r"--allow-hosts\)" % port)
    check(wait_until(lambda: line.search(w.mitmd.stdout()), 5),
          f"no passthrough line:\n{w.mitmd.stdout()}")


if __name__ == "__main__":
    run(test, __doc__)
