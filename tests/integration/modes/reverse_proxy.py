#!/usr/bin/env python3
"""--mode reverse:URL: every connection goes to the URL's server. https:// server: curl to
mitmd by name (SNI) and by address (no SNI) verifies a certificate forged by the mitmd CA and
gets the origin's bytes; h2load over HTTP/2 completes 100 of 100 requests. http:// server:
plain curl is relayed. Each exchange is recorded. An unreachable server is answered 502 with
the reason. (A client whose scheme differs from the server's: reverse_cross_scheme.)"""
import hashlib
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (read_records, cert_issuer_subject, cert_text, check, free_port, info, run,  # noqa
                     standard_setup, step, wait_until)


def sha(b):
    return hashlib.sha256(b).hexdigest()


def curl_direct(env, url, extra=(), timeout=20):
    """curl_direct fetches url with no proxy: mitmd is the server. Returns (code, body, err)."""
    out = env.path("curl.out")
    argv = ["curl", "-sS", "--noproxy", "*", "-o", out, "-w", "%{http_code}", "--max-time",
            str(timeout)] + list(extra) + [url]
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 5)
    body = b""
    if os.path.exists(out):
        with open(out, "rb") as f:
            body = f.read()
        os.unlink(out)
    code = int(cp.stdout.strip()) if cp.stdout.strip().isdigit() else 0
    return code, body, cp.stderr


def records(path):
    return read_records(path)


def test(env):
    body = os.urandom(64 * 1024)
    h2port_holder = {}
    pki_args = []

    step("reverse:https://www.origin.test:H2PORT (nginx with HTTP/2)")
    # the origin world first, then mitmd in reverse mode in front of its HTTP/2 port
    w = standard_setup(env, files={"64k": body, "1k": body[:1024]}, origin=False, flows=True,
                       extra_args=["--mode", "regular"])
    h2port_holder["p"] = w.nginx.h2_port
    pki_args = ["--upstream-ca", w.pki.ca_cert, "--resolve", "*.origin.test=127.0.0.1"]
    flows_https = env.path("flows-https.jsonl")
    rev = env.mitmd(args=pki_args + ["-w", flows_https, "--mode",
                                     f"reverse:https://www.origin.test:{w.nginx.h2_port}"],
                    name="rev-https")
    mport = rev.port

    step("curl https://www.origin.test:MITMD/64k (SNI, --resolve) -> 200, same SHA-256")
    code, got, err = curl_direct(env, f"https://www.origin.test:{mport}/64k",
                                 ["--resolve", f"www.origin.test:{mport}:127.0.0.1",
                                  "--cacert", rev.ca_cert, "--http1.1"])
    check(code == 200 and sha(got) == sha(body), f"curl by name got {code}: {err.strip()}")

    step("the certificate is forged by the mitmd CA (a client trusting the origin CA refuses)")
    code, _, err = curl_direct(env, f"https://www.origin.test:{mport}/1k",
                               ["--resolve", f"www.origin.test:{mport}:127.0.0.1",
                                "--cacert", w.pki.ca_cert])
    check(code == 0 and ("certificate" in err.lower() or "SSL" in err),
          f"curl trusting the origin CA got {code}: {err.strip()}")
    cp = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{mport}", "-servername",
                         "www.origin.test"], input=b"", capture_output=True, timeout=15)
    pem = re.search(rb"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", cp.stdout,
                    re.S)
    check(pem is not None, f"s_client printed no certificate: {cp.stderr[-300:]!r}")
    issuer, subject = cert_issuer_subject(cert_text(pem.group(0).decode()))
    _, ca_subject = cert_issuer_subject(cert_text(open(rev.ca_cert).read()))
    check(issuer == ca_subject, f"leaf issuer {issuer!r} is not the mitmd CA {ca_subject!r}")

    step("curl https://127.0.0.1:MITMD/1k (no SNI): forged for the server's names -> 200")
    code, got, err = curl_direct(env, f"https://127.0.0.1:{mport}/1k",
                                 ["--cacert", rev.ca_cert])
    check(code == 200 and got == body[:1024], f"curl by address got {code}: {err.strip()}")

    step("curl --http2 -> 200 over HTTP/2")
    code, got, err = curl_direct(env, f"https://www.origin.test:{mport}/64k",
                                 ["--resolve", f"www.origin.test:{mport}:127.0.0.1",
                                  "--cacert", rev.ca_cert, "--http2"])
    check(code == 200 and sha(got) == sha(body), f"curl --http2 got {code}: {err.strip()}")

    step("h2load -n 100 -c 2 https://127.0.0.1:MITMD/1k -> 100 succeeded over h2")
    cp = subprocess.run(["h2load", "-n", "100", "-c", "2", f"https://127.0.0.1:{mport}/1k"],
                        capture_output=True, text=True, timeout=60)
    info(" | ".join(ln.strip() for ln in cp.stdout.splitlines()
                    if "requests:" in ln or "Application protocol" in ln))
    check(re.search(r"requests: 100 total, 100 started, 100 done, 100 succeeded", cp.stdout)
          is not None, f"h2load:\n{cp.stdout[-1500:]}{cp.stderr[-500:]}")
    check("Application protocol: h2" in cp.stdout, "h2load did not negotiate h2")

    step("records: the exchanges, with the server named")
    check(wait_until(lambda: len([r for r in records(flows_https)
                                  if (r.get("response") or {}).get("status") == 200]) >= 103, 5),
          f"expected >= 103 records with 200, got {len(records(flows_https))}")
    # keep_host_header=false (mitmproxy's default): the server's Host is sent and recorded
    check(re.search(r"GET https://www\.origin\.test:%d/64k HTTP/1\.1 << 200" % w.nginx.h2_port,
                    rev.stdout()), f"no flow line for the first GET:\n{rev.stdout()[:2000]}")

    step("a plain HTTP client to a reverse:https:// server: relayed over TLS")
    code, got, err = curl_direct(env, f"http://127.0.0.1:{mport}/1k")
    check(code == 200 and got == body[:1024], f"plain to https server: {code} {got[:200]!r}")

    step("reverse:http://127.0.0.1:PLAIN: plain curl is relayed and recorded")
    flows_http = env.path("flows-http.jsonl")
    rev2 = env.mitmd(args=pki_args + ["-w", flows_http, "--set",
                                      f"mode=reverse:http://127.0.0.1:{w.nginx.plain_port}"],
                     name="rev-http")
    code, got, err = curl_direct(env, f"http://127.0.0.1:{rev2.port}/64k")
    check(code == 200 and sha(got) == sha(body), f"plain reverse got {code}: {err.strip()}")
    check(wait_until(lambda: any((r.get("response") or {}).get("status") == 200
                                 for r in records(flows_http)), 5), "no record for plain GET")

    step("a TLS client to a reverse:http:// server: intercepted, relayed in the clear")
    code, got, err = curl_direct(env, f"https://127.0.0.1:{rev2.port}/64k",
                                 ["--cacert", rev2.ca_cert])
    check(code == 200 and sha(got) == sha(body), f"TLS client to an http server got {code}")

    step("an unreachable server: 502 with the reason")
    dead = free_port()
    rev3 = env.mitmd(args=pki_args + ["--mode", f"reverse:http://127.0.0.1:{dead}"],
                     name="rev-dead")
    code, got, err = curl_direct(env, f"http://127.0.0.1:{rev3.port}/")
    check(code == 502 and b"refused" in got, f"unreachable server: {code} {got!r}")


if __name__ == "__main__":
    run(test, __doc__)
