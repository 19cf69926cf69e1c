#!/usr/bin/env python3
"""--set client_certs=FILE|DIR (mitmproxy's option): mitmd presents a client certificate to
upstreams that ask for one. The origin (Python ssl, CERT_REQUIRED against a test client CA,
TLS 1.2 and 1.3 ports) answers with the subject CN of the certificate it got. Without the
option the origin refuses the handshake and mitmd answers 502 with the reason; with
client_certs=FILE every upstream gets that certificate; with client_certs=DIR the upstream
www.origin.test gets DIR/www.origin.test.pem and a host without a file gets none (502)."""
import http.server
import os
import ssl
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from certs_lib import OperatorPki  # noqa: E402
from harness import check, curl, info, run, step  # noqa: E402


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        peer = self.connection.getpeercert() or {}
        cn = [v for rdn in peer.get("subject", ()) for k, v in rdn if k == "commonName"]
        body = f"client-cn={cn[0] if cn else '-'}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class TlsServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, ctx):
        super().__init__(("127.0.0.1", 0), Handler)
        self.ctx = ctx

    def get_request(self):
        sock, addr = super().get_request()
        sock.settimeout(5)
        try:
            return self.ctx.wrap_socket(sock, server_side=True), addr
        except (ssl.SSLError, OSError):
            sock.close()
            raise


def origin(pki, client_ca, version):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ctx.maximum_version = version
    ctx.load_cert_chain(*pki.certs["valid"])
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(client_ca)
    srv = TlsServer(ctx)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def test(env):
    pki = env.pki()
    clients = OperatorPki(env.path("clients"), name="client")
    one = clients.leaf("one", "mitmd-client-one", None, usage="clientAuth")
    cdir = env.mkdir("client-dir")
    clients.leaf("www", "mitmd-client-www", None, usage="clientAuth", rsa=True)
    os.replace(os.path.join(clients.dir, "www.pem"), os.path.join(cdir, "www.origin.test.pem"))
    servers = {"TLSv1.3": origin(pki, clients.ca_cert, ssl.TLSVersion.TLSv1_3),
               "TLSv1.2": origin(pki, clients.ca_cert, ssl.TLSVersion.TLSv1_2)}
    base = ["--upstream-ca", pki.ca_cert, "--resolve", "*.origin.test=127.0.0.1"]
    try:
        m0 = env.mitmd(args=base, name="mitmd-none")
        m1 = env.mitmd(args=base + ["--set", f"client_certs={one}"], name="mitmd-file")
        m2 = env.mitmd(args=base + ["--set", f"client_certs={cdir}"], name="mitmd-dir")
        for ver, srv in servers.items():
            port = srv.server_address[1]
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
    finally:
        for srv in servers.values():
            srv.shutdown()
            srv.server_close()


if __name__ == "__main__":
    run(test, __doc__)
