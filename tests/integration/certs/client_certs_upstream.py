#!/usr/bin/env python3
"""--set client_certs=FILE|DIR (mitmproxy's option): mitmd presents a client certificate to
upstreams that ask for one. The origin (Python ssl, CERT_REQUIRED against a test client CA,
TLS 1.2 and 1.3 ports) answers with the subject CN of the certificate it got. Without the
option the origin refuses the handshake and mitmd answers 502 with the reason; with
client_certs=FILE every upstream gets that certificate; with client_certs=DIR the upstream
www.origin.test gets DIR/www.origin.test.pem and a host without a file gets none (502)."""
import os
import ssl
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from certs_lib import OperatorPki  # noqa: E402
from harness import answer_origin, check, curl, info, run, step  # noqa: E402


def client_cn(handler):
    """client_cn is the origin's answer: the subject CN of the client certificate it got."""
    peer = handler.connection.getpeercert() or {}
    cn = [v for rdn in peer.get("subject", ()) for k, v in rdn if k == "commonName"]
    return f"client-cn={cn[0] if cn else '-'}\n".encode()


def origin(env, pki, client_ca, version):
    """origin starts a TLS origin speaking only `version` that requires a client certificate
    from client_ca and answers client_cn; returns its port."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ctx.maximum_version = version
    ctx.load_cert_chain(*pki.certs["valid"])
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(client_ca)
    return answer_origin(env, client_cn, ctx)


def test(env):
    pki = env.pki()
    clients = OperatorPki(env.path("clients"), name="client")
    one = clients.leaf("one", "mitmd-client-one", None, usage="clientAuth")
    cdir = env.mkdir("client-dir")
    clients.leaf("www", "mitmd-client-www", None, usage="clientAuth", rsa=True)
    os.replace(os.path.join(clients.dir, "www.pem"), os.path.join(cdir, "www.origin.test.pem"))
    ports = {"TLSv1.3": origin(env, pki, clients.ca_cert, ssl.TLSVersion.TLSv1_3),
             "TLSv1.2": origin(env, pki, clients.ca_cert, ssl.TLSVersion.TLSv1_2)}
    base = ["--upstream-ca", pki.ca_cert, "--resolve", "*.origin.test=127.0.0.1"]
    m0 = env.mitmd(args=base, name="mitmd-none")
    m1 = env.mitmd(args=base + ["--set", f"client_certs={one}"], name="mitmd-file")
    m2 = env.mitmd(args=base + ["--set", f"client_certs={cdir}"], name="mitmd-dir")
    for ver, port in ports.items():
        url = f"https://www.origin.test:{port}/"
        step(f"{ver}: without client_certs the origin refuses: 502 with the reason")
        code, body, err = curl(env, m0.port, url, cafile=m0.ca_cert)
        info(f"{ver}: HTTP {code} {body[:200]!r}")
        check(code == 502, f"expected 502, got {code} {err.strip()}")
        want = b"certificate required" if ver == "TLSv1.3" else b"handshake failure"
        check(want in body, f"the 502 does not give the origin's alert ({want!r}): {body!r}")
        check(b"--upstream-ca" not in body, f"the 502 hints at the wrong cause: {body!r}")

        step(f"{ver}: client_certs=FILE: 200, the origin saw mitmd-client-one")
        code, body, err = curl(env, m1.port, url, cafile=m1.ca_cert)
        check(code == 200 and body == b"client-cn=mitmd-client-one\n",
              f"HTTP {code} {body!r} {err.strip()}")
        code, body, err = curl(env, m1.port, f"https://api.origin.test:{port}/",
                               cafile=m1.ca_cert)
        check(code == 200 and body == b"client-cn=mitmd-client-one\n",
              f"api.origin.test with client_certs=FILE: HTTP {code} {body!r}")

        step(f"{ver}: client_certs=DIR: www.origin.test gets DIR/www.origin.test.pem (RSA)")
        code, body, err = curl(env, m2.port, url, cafile=m2.ca_cert)
        check(code == 200 and body == b"client-cn=mitmd-client-www\n",
              f"HTTP {code} {body!r} {err.strip()}")
        step(f"{ver}: client_certs=DIR: api.origin.test has no file: refused, 502")
        code, body, err = curl(env, m2.port, f"https://api.origin.test:{port}/",
                               cafile=m2.ca_cert)
        check(code == 502, f"api.origin.test without a file: HTTP {code} {body!r}")
    for m in (m0, m1, m2):
        m.check_no_crash()


if __name__ == "__main__":
    run(test, __doc__)
