#!/usr/bin/env python3
"""HTTPS GET through mitmd works with curl, urllib and http.client, each verifying the
forged certificate against the mitmd CA only, and mitmd prints a flow line per exchange."""
import http.client
import os
import re
import ssl
import sys
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (check, client_context, curl, info, run, standard_setup,  # noqa: E402
                     step, wait_until)


def test(env):
    body = os.urandom(1024)
    w = standard_setup(env, files={"1k": body})
    port = w.nginx.ports["valid"]
    url = f"https://www.origin.test:{port}/1k"

    step(f"curl -x mitmd --cacert mitmd-ca-cert.pem {url} -> 200 and the 1 KiB file")
    code, got, err = curl(env, w.mitmd.port, url, cafile=w.mitmd.ca_cert)
    check(code == 200, f"curl got HTTP {code}; stderr: {err.strip()}")
    check(got == body, f"curl body differs from the origin file ({len(got)} bytes)")

    step("curl trusting only the origin CA rejects the cert (it is forged, not the origin's)")
    code, _, err = curl(env, w.mitmd.port, url, cafile=w.pki.ca_cert)
    check(code == 0 and ("certificate" in err.lower() or "SSL" in err),
          f"curl trusting only the origin CA accepted the proxy's cert (code {code}, {err!r})")

    step("urllib with ProxyHandler and a context trusting the mitmd CA -> 200")
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({"https": w.mitmd.proxy_url()}),
        urllib.request.HTTPSHandler(context=client_context(w.mitmd.ca_cert)))
    with opener.open(url, timeout=10) as resp:
        check(resp.status == 200, f"urllib got {resp.status}")
        check(resp.read() == body, "urllib body differs from the origin file")

    step("http.client over CONNECT (set_tunnel) to the Python origin -> 200 /hello")
    conn = w.mitmd.https_conn("api.origin.test", w.origin.port)
    conn.request("GET", "/hello")
    resp = conn.getresponse()
    data = resp.read()
    check(resp.status == 200, f"http.client got {resp.status}")
    check(data == b"hello from origin\n", f"unexpected body {data!r}")
    conn.close()

    step("a TLS 1.2-only client (no ALPN) is intercepted too")
    ctx = ssl.create_default_context(cafile=w.mitmd.ca_cert)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    conn = http.client.HTTPSConnection("127.0.0.1", w.mitmd.port, timeout=10, context=ctx)
    conn.set_tunnel("www.origin.test", port)
    conn.request("GET", "/1k")
    resp = conn.getresponse()
    check(resp.status == 200 and resp.read() == body, f"TLS 1.2 client: {resp.status}")
    check(conn.sock.version() == "TLSv1.2", f"negotiated {conn.sock.version()}")
    conn.close()

    step("stdout has a flow line per exchange: 'GET https://www.origin.test:PORT/1k ... << 200'")
    pat = re.compile(r"127\.0\.0\.1:\d+: GET https://www\.origin\.test(:\d+)?/1k HTTP/1\.1 << 200")
    lines = wait_until(lambda: pat.findall(w.mitmd.stdout()) and
                       [ln for ln in w.mitmd.stdout().splitlines() if pat.search(ln)], 3)
    check(lines and len(lines) >= 2, f"expected >= 2 flow lines for /1k on stdout, got:\n"
          f"{w.mitmd.stdout()}")
    info(f"flow line: {lines[0]!r}")


if __name__ == "__main__":
    run(test, __doc__)
