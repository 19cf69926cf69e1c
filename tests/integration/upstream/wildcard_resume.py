#!/usr/bin/env python3
"""An upstream session made for a.example.test, whose certificate is *.example.test, is
resumed for b.example.test (RFC 8446 §4.6.1): nginx logs a full handshake for a and a
resumed one for b, both responses are intact, the master's stats count 2 upstream
handshakes of which 1 resumed across names, and the client still gets a certificate forged
by the mitmd CA that names b.example.test."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (Nginx, cert_issuer_subject, cert_sans, cert_text, check,  # noqa: E402
                     curl, info, run, s_client_chain, sha256_bytes, step, wait_stat,
                     wait_until)

LOG_FORMAT = "'$ssl_server_name $ssl_session_reused $status $ssl_protocol $host'"


class LoggingNginx(Nginx):
    """LoggingNginx is the harness's nginx with an access log of the SNI and whether the TLS
    session was reused ("r") or not (".") for each request, speaking TLS 1.3 like the bench
    origin (nginx 1.22 offers only up to TLS 1.2 by default; with TLS 1.2, OpenSSL reports
    the SNI of the original handshake on a resumption, so $ssl_server_name would say a)."""

    def __init__(self, env, pki, files):
        super().__init__(env, pki, files)
        self.access_log = os.path.join(self.prefix, "access.log")

    def _conf(self):
        conf = super()._conf()
        check("  access_log off;" in conf, "the harness's nginx.conf changed: no access_log off")
        return conf.replace("  access_log off;",
                            "  ssl_protocols TLSv1.2 TLSv1.3;\n"
                            f"  log_format wild {LOG_FORMAT};\n"
                            f"  access_log {self.access_log} wild;")

    def log_lines(self):
        try:
            with open(self.access_log) as f:
                return [line.split() for line in f if line.strip()]
        except OSError:
            return []


def test(env):
    pki = env.pki()
    pki._leaf("wild", "*.example.test", ["DNS:*.example.test"])
    files = {"1k": os.urandom(1024)}
    ngx = LoggingNginx(env, pki, files)
    env.stack.callback(ngx.stop)
    ngx.start()
    env.add_log("nginx access.log", ngx.access_log)
    port = ngx.ports["wild"]
    # One worker: the session cache is per worker.
    m = env.mitmd(args=["--upstream-ca", pki.ca_cert, "--resolve", "*.example.test=127.0.0.1"],
                  workers=1)

    for host in ("a.example.test", "b.example.test"):
        url = f"https://{host}:{port}/1k"
        step(f"curl {url} via mitmd (trusting only the mitmd CA) -> 200, the file's SHA-256")
        code, body, err = curl(env, m.port, url, cafile=m.ca_cert)
        check(code == 200, f"{host}: HTTP {code}, curl: {err.strip()}")
        check(sha256_bytes(body) == ngx.files["1k"],
              f"{host}: body of {len(body)} bytes does not match the file's SHA-256")

    step("nginx logged a full handshake for a.example.test and a resumed one for b")
    lines = wait_until(lambda: (lambda ls: ls if len(ls) >= 2 else None)(ngx.log_lines()), 5)
    info(f"access log: {ngx.log_lines()}")
    check(lines is not None, f"nginx logged {len(ngx.log_lines())} requests, expected 2")
    check(len(lines) == 2, f"nginx logged {len(lines)} requests, expected 2: {lines}")
    check(lines[0][:3] == ["a.example.test", ".", "200"],
          f"first upstream request: want SNI a.example.test, a new session (.), 200; "
          f"got {lines[0]}")
    check(lines[1][:3] == ["b.example.test", "r", "200"],
          f"second upstream request: want SNI b.example.test resumed (r) with a's session, "
          f"200; got {lines[1]}")
    check(lines[1][3:] == ["TLSv1.3", "b.example.test"],
          f"second upstream request: want TLS 1.3 and Host b.example.test; got {lines[1]}")

    step("the master's stats: 2 upstream handshakes, 1 resumed, with a.example.test's session")
    st = wait_stat(m, "upstream_resumed_wildcard", 1)
    got = {k: st.get(k) for k in ("upstream_tls", "upstream_resumed",
                                  "upstream_resumed_wildcard")}
    info(f"stats: {got}")
    check(got == {"upstream_tls": 2, "upstream_resumed": 1, "upstream_resumed_wildcard": 1},
          f"upstream TLS counters {got}, expected 2 handshakes, 1 resumed, 1 across names")

    step("the client-facing certificate for b.example.test is forged by the mitmd CA for b")
    _, ca_subject = cert_issuer_subject(cert_text(open(m.ca_cert).read()))
    chain = s_client_chain(m.port, "b.example.test", port, servername="b.example.test")
    leaf = cert_text(chain[0])
    issuer, subject = cert_issuer_subject(leaf)
    sans = cert_sans(leaf)
    info(f"leaf subject {subject!r}, issuer {issuer!r}, SANs {sans}")
    check(issuer == ca_subject, f"leaf issuer {issuer!r} != mitmd CA subject {ca_subject!r}")
    check("DNS:b.example.test" in sans, f"DNS:b.example.test missing from {sans}")
    check("DNS:*.example.test" in sans, f"the upstream name *.example.test missing from {sans}")
    leaf_path = env.path("leaf-b.pem")
    with open(leaf_path, "w") as f:
        f.write(chain[0] + "\n")
    cp = env.run_cmd(["openssl", "verify", "-CAfile", m.ca_cert, "-verify_hostname",
                      "b.example.test", "-purpose", "sslserver", leaf_path])
    check(cp.returncode == 0, f"openssl verify: {cp.stdout.strip()} {cp.stderr.strip()}")


if __name__ == "__main__":
    run(test, __doc__)
