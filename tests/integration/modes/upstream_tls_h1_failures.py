#!/usr/bin/env python3
"""mitmd's own HTTP/1.1 TLS handshakes with a server (worker/upstream.c upstream_tls_h1_start,
upstream_tls_step, upstream_tls_timed_out) fail with the same reasons from each of their three
callers, with --handshake-timeout 1:
- the HTTP/1.1 relay (worker/h1_conn.c): an absolute https:// URL sent in the clear to the
  regular listener;
- reverse mode with a plain client of an https:// server (worker/reverse.c);
- the HTTP/2 bridge's redial (worker/h2_conn.c): a TLS client speaking HTTP/2 to an HTTP/1.1
  server that closes after its first response; the second request needs a new connection.
Each meets a server that never answers the ClientHello (502 "upstream TLS handshake timed out")
and one that closes on it (502 "upstream closed the connection during the TLS handshake", or
BoringSSL's "connection closed during TLS handshake" when the close reached the handshake)."""
import os
import re
import socket
import ssl
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, info, parse_status, read_head, recv_all, run, step  # noqa: E402

LINE_RE = re.compile(r"^mitmd: reverse proxy to (\S+) listening at 127\.0\.0\.1:(\d+)\.$", re.M)
TIMED_OUT = re.compile(rb"^upstream TLS handshake timed out\n")
# as the close is seen: by the leg, or by BoringSSL (EOF fed to the handshake)
CLOSED = re.compile(rb"^(upstream closed the connection during the TLS handshake|"
                    rb"connection closed during TLS handshake)\n")


class Server:
    """Server accepts TCP connections. The first `serve` ones get TLS (`ctx`) and one HTTP/1.1
    response with Connection: close; the others are held open silently (`silent`) or closed
    once the ClientHello arrived."""

    def __init__(self, silent, ctx=None, serve=0):
        self.silent, self.ctx, self.serve = silent, ctx, serve
        self.held = []
        self.accepted = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._one, args=(c, self.accepted), daemon=True).start()

    def _one(self, c, n):
        c.settimeout(10)
        try:
            if n <= self.serve:
                t = self.ctx.wrap_socket(c, server_side=True)
                read_head(t)
                t.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                t.close()
            elif self.silent:
                self.held.append(c)  # never answered; closed when the test ends
            else:
                c.recv(65536)
                c.close()
        except (OSError, ssl.SSLError):
            c.close()

    def stop(self):
        self.sock.close()
        for c in self.held:
            c.close()


def answer_body(port, request):
    """answer_body sends `request` to mitmd's `port` and returns (status, body)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(request)
    head, rest = read_head(s)
    body = rest + recv_all(s, timeout=5)
    s.close()
    return (parse_status(head)[0] if head else 0), body


def test(env):
    pki = env.pki()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*pki.certs["valid"])
    ctx.set_alpn_protocols(["http/1.1"])
    servers = {"silent": Server(True), "closer": Server(False),
               "silent-2nd": Server(True, ctx, 1), "closer-2nd": Server(False, ctx, 1)}
    for s in servers.values():
        env.stack.callback(s.stop)
    specs = {"silent": f"reverse:https://127.0.0.1:{servers['silent'].port}",
             "closer": f"reverse:https://127.0.0.1:{servers['closer'].port}",
             "silent-2nd": f"reverse:https://www.origin.test:{servers['silent-2nd'].port}",
             "closer-2nd": f"reverse:https://www.origin.test:{servers['closer-2nd'].port}"}
    args = ["--handshake-timeout", "1", "--upstream-ca", pki.ca_cert,
            "--resolve", "*.origin.test=127.0.0.1", "--mode", "regular@0"]
    for s in specs.values():
        args += ["--mode", s + "@0"]
    m = env.mitmd(args=args)
    found = {url: int(port) for url, port in LINE_RE.findall(m.stderr())}
    port = {k: found.get(s.split(":", 1)[1]) for k, s in specs.items()}
    check(all(port.values()), f"start-up lines name every listener: {found}")
    info(f"listeners: {port}, regular {m.port}")

    for name, why in (("silent", TIMED_OUT), ("closer", CLOSED)):
        step(f"HTTP/1.1 relay, https:// URL in the clear, {name} server: 502 {why.pattern}")
        target = f"127.0.0.1:{servers[name].port}"
        code, body = answer_body(m.port, f"GET https://{target}/x HTTP/1.1\r\nHost: {target}\r\n"
                                 "Connection: close\r\n\r\n".encode())
        check(code == 502 and why.match(body), f"expected 502 {why.pattern}, got {code}: {body!r}")

        step(f"reverse mode, plain client, {name} https:// server: 502 {why.pattern}")
        code, body = answer_body(port[name], b"GET /x HTTP/1.1\r\nHost: a\r\n"
                                 b"Connection: close\r\n\r\n")
        check(code == 502 and why.match(body), f"expected 502 {why.pattern}, got {code}: {body!r}")

        step(f"HTTP/2 bridge redial, {name} server on the 2nd connection: 502 {why.pattern}")
        url = f"https://127.0.0.1:{port[name + '-2nd']}"
        out = [env.path(f"{name}{i}.out") for i in range(2)]
        cp = subprocess.run(["curl", "-sS", "--noproxy", "*", "--http2", "--max-time", "20",
                             "--cacert", m.ca_cert, "-w", "%{http_code} %{http_version}\n",
                             "-o", out[0], url + "/one", "-o", out[1], url + "/two"],
                            capture_output=True, text=True, timeout=25)
        got = [ln.split() for ln in cp.stdout.splitlines()]
        bodies = [open(o, "rb").read() if os.path.exists(o) else b"" for o in out]
        check(got == [["200", "2"], ["502", "2"]] and bodies[0] == b"ok" and why.match(bodies[1]),
              f"expected 200 then 502 {why.pattern} over HTTP/2, got {got}: {bodies!r} "
              f"{cp.stderr.strip()}")
        check(servers[name + "-2nd"].accepted == 2,
              f"{servers[name + '-2nd'].accepted} server connections, expected 2 (one redial)")
    m.check_no_crash()


if __name__ == "__main__":
    run(test, __doc__)
