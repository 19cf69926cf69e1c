#!/usr/bin/env python3
"""A resumed upstream session gives the client the same forged certificate as the full
handshake before it: the worker reads the upstream leaf's names (and the subject and issuer of
flow records) from its per-leaf cache once it has seen the leaf, and they must be exactly what
decoding the certificate gave. Against nginx (TLS 1.3) with a leaf for multi.example.test,
alt.example.test and 127.0.0.1: the first connection is a full upstream handshake, the next
ones resume (nginx logs r); every forged leaf has the same subject, issuer and SANs, the
certificate was requested from the master once (the same name set hit the certcache), and the
flow records of resumed exchanges name the upstream leaf's subject and issuer."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (Nginx, cert_issuer_subject, cert_sans, cert_text, check, curl,  # noqa: E402
                     info, mitmd_stats, run, s_client_chain, step, wait_until)

HOST = "multi.example.test"


class LoggingNginx(Nginx):
    """LoggingNginx speaks TLS 1.3 (like the bench origin) and logs, per request, the SNI and
    whether the TLS session was reused ("r") or not (".")."""

    def __init__(self, env, pki, files):
        super().__init__(env, pki, files)
        self.access_log = os.path.join(self.prefix, "access.log")

    def _conf(self):
        conf = super()._conf()
        check("  access_log off;" in conf, "the harness's nginx.conf changed: no access_log off")
        return conf.replace("  access_log off;",
                            "  ssl_protocols TLSv1.2 TLSv1.3;\n"
                            "  log_format names '$ssl_server_name $ssl_session_reused $status';\n"
                            f"  access_log {self.access_log} names;")

    def log_lines(self):
        try:
            with open(self.access_log) as f:
                return [line.split() for line in f if line.strip()]
        except OSError:
            return []


def forged(m, port):
    """forged returns (subject, issuer, sorted SANs) of the leaf mitmd serves for HOST."""
    chain = s_client_chain(m.port, HOST, port, servername=HOST)
    text = cert_text(chain[0])
    issuer, subject = cert_issuer_subject(text)
    return subject, issuer, sorted(cert_sans(text))


def test(env):
    pki = env.pki()
    pki._leaf("multi", HOST, [f"DNS:{HOST}", "DNS:alt.example.test", "IP:127.0.0.1"])
    ngx = LoggingNginx(env, pki, {"1k": os.urandom(1024)})
    env.stack.callback(ngx.stop)
    ngx.start()
    env.add_log("nginx access.log", ngx.access_log)
    port = ngx.ports["multi"]
    flows = env.path("flows.jsonl")
    # One worker: the session cache and the peer cache are per worker.
    m = env.mitmd(args=["--upstream-ca", pki.ca_cert, "--resolve", "*.example.test=127.0.0.1",
                        "-w", flows], workers=1)

    step("three connections for the forged leaf: a full upstream handshake, then two resumed")
    got = [forged(m, port) for _ in range(3)]
    for g in got:
        info(f"forged leaf: subject {g[0]!r}, issuer {g[1]!r}, SANs {g[2]}")
    check(got[0][2] == sorted(["DNS:" + HOST, "DNS:alt.example.test", "IP Address:127.0.0.1"]),
          f"the full handshake's forged SANs {got[0][2]} do not name the upstream's")
    check(got[1] == got[0] and got[2] == got[0],
          f"a resumed upstream gave another forged leaf: {got[1:]} vs {got[0]}")
    st = wait_until(lambda: (lambda s: s if s.get("upstream_resumed", 0) >= 2 else None)(
        mitmd_stats(m)), 5)
    check(st is not None, f"upstream_resumed stayed below 2: {mitmd_stats(m)}")
    info({k: st.get(k) for k in ("upstream_tls", "upstream_resumed", "cert_requests",
                                 "cache_hits")})
    check(st.get("upstream_tls") == 3 and st.get("upstream_resumed") == 2,
          f"want 3 upstream handshakes of which 2 resumed: {st}")
    check(st.get("cert_requests") == 1,
          f"the resumed connections asked the master for another name set: {st}")

    step("flow records of resumed exchanges name the upstream leaf's subject and issuer")
    _, ca_subject = cert_issuer_subject(cert_text(open(pki.ca_cert).read()))
    for _ in range(2):
        code, _, err = curl(env, m.port, f"https://{HOST}:{port}/1k", cafile=m.ca_cert)
        check(code == 200, f"HTTP {code}, curl: {err.strip()}")
    recs = wait_until(lambda: (lambda r: r if len(r) >= 2 else None)(
        [json.loads(x) for x in open(flows) if x.strip()] if os.path.exists(flows) else []), 5)
    check(recs is not None, "fewer than 2 flow records")
    for rec in recs:
        tls = rec["tls"]
        info(f"flow tls: {tls}")
        check(tls["cert_subject"] == f"CN={HOST}", f"cert_subject {tls['cert_subject']!r}")
        # the same RDNs as `openssl x509 -text` prints for the origin CA (its order may differ)
        want = sorted(p.strip().replace(" = ", "=") for p in ca_subject.split(","))
        check(sorted(tls["cert_issuer"].split(",")) == want,
              f"cert_issuer {tls['cert_issuer']!r}, want the RDNs {want} (CA {ca_subject!r})")
    step("nginx logged the flows' requests on resumed sessions (r)")
    lines = wait_until(lambda: (lambda ls: ls if len(ls) >= 2 else None)(ngx.log_lines()), 5)
    check(lines is not None and all(x[:3] == [HOST, "r", "200"] for x in lines),
          f"access log: {ngx.log_lines()}")


if __name__ == "__main__":
    run(test, __doc__)
