#!/usr/bin/env python3
"""mitmproxy's --set connect_addr=IP: every upstream connection leaves from that local address
(an origin of this test answers with the address it sees), for plain HTTP and for intercepted
HTTPS; without it the kernel picks (127.0.0.1 toward 127.0.0.1). An address of the other
family than the server's, or one that is not on this machine, gets the client a 502 naming
connect_addr (bind fails locally: nothing is sent; for HTTPS the CONNECT is the 502 and
its flow line names the reason); a value that is not a numeric address
stops start-up with one line naming the option, exit 2."""
import http.server
import os
import ssl
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, curl, info, run, standard_setup, step, wait_until  # noqa: E402


class PeerHandler(http.server.BaseHTTPRequestHandler):
    """Answers every GET with the client address of its connection."""
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - http.server's name
        body = self.client_address[0].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def peer_origin(env, pki=None):
    """peer_origin starts an origin on 127.0.0.1 (TLS with the Pki 'valid' certificate when
    pki is given) that answers with the peer's address; returns its port."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), PeerHandler)
    if pki is not None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*pki.certs["valid"])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()

    def stop():
        srv.shutdown()
        srv.server_close()
    env.stack.callback(stop)
    return srv.server_address[1]


def test(env):
    w = standard_setup(env, origin=False)
    plain_port, tls_port = peer_origin(env), peer_origin(env, w.pki)
    base = ["--upstream-ca", w.pki.ca_cert, "--resolve", "*.origin.test=127.0.0.1"]

    def seen(m):
        """seen returns the origins' view of mitmd's address: (plain HTTP, intercepted HTTPS)
        as (status, body) pairs."""
        out = []
        for url in (f"http://www.origin.test:{plain_port}/", f"https://www.origin.test:{tls_port}/"):
            code, body, err = curl(env, m.port, url, cafile=m.ca_cert)
            out.append((code, body.decode(errors="replace").strip()))
        return out

    step("default: the kernel picks the local address (127.0.0.1 toward 127.0.0.1)")
    got = seen(w.mitmd)
    info(f"default: {got}")
    check(got == [(200, "127.0.0.1"), (200, "127.0.0.1")], f"default: {got}")

    step("--set connect_addr=127.0.0.2: both origins see 127.0.0.2")
    m = env.mitmd(args=base + ["--set", "connect_addr=127.0.0.2"], name="mitmd-addr")
    got = seen(m)
    info(f"connect_addr=127.0.0.2: {got}")
    check(got == [(200, "127.0.0.2"), (200, "127.0.0.2")], f"connect_addr=127.0.0.2: {got}")

    for addr, what, must in (("::1", "IPv6 address toward an IPv4 server", "address family"),
                             ("192.0.2.1", "address not on this machine", "connect_addr")):
        step(f"--set connect_addr={addr} ({what}): 502 naming connect_addr, mitmd unharmed")
        bad = env.mitmd(args=base + ["--set", f"connect_addr={addr}"], name=f"mitmd-{addr}")
        got = seen(bad)
        info(f"connect_addr={addr}: {got}")
        code, body = got[0]
        check(code == 502 and must in body and "connect_addr" in body,
              f"connect_addr={addr}, plain HTTP: HTTP {code} {body!r}")
        # HTTPS: the CONNECT itself is answered 502 (curl reports no HTTP code); its flow line
        # names the reason
        line = wait_until(lambda: next((ln for ln in bad.stdout().splitlines()
                                        if f"CONNECT www.origin.test:{tls_port}" in ln), None), 5)
        info(f"CONNECT flow line: {line!r}")
        check(got[1][0] == 0 and line is not None and "502" in line and must in line,
              f"connect_addr={addr}, CONNECT: {got[1]} {line!r}")
        bad.check_no_crash()

    step("--set connect_addr=localhost (not numeric): one line naming it, exit 2")
    cp = env.run_cmd([env.mitmd_bin, "--confdir", env.path("never"), "-p", "0", "--set",
                      "connect_addr=localhost"], timeout=10)
    lines = [ln for ln in cp.stderr.splitlines() if ln.strip()]
    info(f"exit {cp.returncode}: {lines}")
    check(cp.returncode == 2 and len(lines) == 1 and "connect_addr" in lines[0],
          f"exit {cp.returncode}: {lines}")
    w.mitmd.check_no_crash()
    m.check_no_crash()


if __name__ == "__main__":
    run(test, __doc__)
