#!/usr/bin/env python3
"""An https:// absolute-form request sent to the proxy in the clear (no CONNECT), as some load
generators and HTTP libraries do, is served like mitmproxy serves it: mitmd opens TLS to the
origin (verified as usual), relays, and records the exchange; keep-alive works; an upstream
whose certificate fails verification gets a 502 whose body and Proxy-Status say why and how
to trust it."""
import hashlib
import http.client
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import read_records, check, info, run, standard_setup, step, wait_until  # noqa: E402


def test(env):
    body = os.urandom(1024)
    w = standard_setup(env, files={"1k": body}, origin=False, flows=True)
    port = w.nginx.ports["valid"]
    url = f"https://www.origin.test:{port}/1k"

    step(f"GET {url} in the clear through the proxy, twice on one connection -> 200, same bytes")
    conn = http.client.HTTPConnection("127.0.0.1", w.mitmd.port, timeout=10)
    for i in range(2):
        conn.request("GET", url)
        resp = conn.getresponse()
        got = resp.read()
        check(resp.status == 200, f"request {i + 1}: HTTP {resp.status} {got[:200]!r}")
        check(hashlib.sha256(got).hexdigest() == hashlib.sha256(body).hexdigest(),
              f"request {i + 1}: body differs ({len(got)} bytes)")
        check(not resp.will_close, f"request {i + 1}: the proxy closed a keep-alive connection")
    conn.close()

    step("the exchange is recorded with its https:// URL and the upstream's TLS details")
    def records():
        return read_records(w.flows)
    check(wait_until(lambda: len(records()) >= 2, 5), f"records: {records()}")
    rec = records()[0]
    check(rec["request"]["url"] == url, f"url {rec['request']['url']!r}")
    check(rec["tls"] is not None and rec["tls"]["version"].startswith("TLS"),
          f"tls details {rec['tls']!r}")
    check(rec["tls"]["cert_issuer"] != "" and rec["tls"]["cert_subject"] != "",
          f"upstream certificate names missing: {rec['tls']!r}")

    step("an expired upstream certificate -> 502 with the reason, Proxy-Status and a hint")
    conn = http.client.HTTPConnection("127.0.0.1", w.mitmd.port, timeout=10)
    conn.request("GET", f"https://expired.origin.test:{w.nginx.ports['expired']}/1k")
    resp = conn.getresponse()
    text = resp.read().decode("utf-8", "replace")
    ps = resp.getheader("Proxy-Status", "")
    info(f"HTTP {resp.status}; Proxy-Status: {ps}; body {text.strip()[:200]!r}")
    check(resp.status == 502, f"expected 502, got {resp.status}")
    check("expired" in text and "verify" in text, f"no reason in the body: {text!r}")
    check("--upstream-ca" in text and "-k" in text, f"no hint in the body: {text!r}")
    check(ps.startswith("mitmd; error=tls_certificate_error") and "expired" in ps,
          f"Proxy-Status: {ps!r}")
    conn.close()


if __name__ == "__main__":
    run(test, __doc__)
