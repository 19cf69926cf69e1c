#!/usr/bin/env python3
"""A request whose bytes arrive as one burst of tiny TLS records (the head and the body of a
POST, one byte per record: about 3,000 records encrypted first, then written to the socket
with one sendall, so that mitmd reads them all at once) is served: mitmd works through a burst
in bounded steps, and a step that runs out of its budget queues the rest of the work on the
ring instead of waiting for a socket event that never comes (the ciphertext is already out of
the socket). It once hung until the client gave up. The next request on the connection (also
a burst) works too."""
import hashlib
import json
import os
import socket
import ssl
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, info, run, standard_setup, step  # noqa: E402


class BurstClient:
    """BurstClient speaks TLS through mitmd's CONNECT over memory BIOs, so that it can encrypt
    many records before sending any of them."""

    def __init__(self, mport, host, port, cafile):
        self.sock = socket.create_connection(("127.0.0.1", mport), timeout=10)
        self.sock.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n"
                          .encode())
        got = b""
        while b"\r\n\r\n" not in got:
            got += self.sock.recv(4096)
        if not got.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"CONNECT: {got[:100]!r}")
        ctx = ssl.create_default_context(cafile=cafile)
        ctx.set_alpn_protocols(["http/1.1"])
        self.inb, self.outb = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.inb, self.outb, server_hostname=host)
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.sock.sendall(self.outb.read())
                self.inb.write(self.sock.recv(65536))
        self.sock.sendall(self.outb.read())

    def send_burst(self, data):
        for i in range(len(data)):
            self.tls.write(data[i:i + 1])  # one record per byte
        burst = self.outb.read()
        self.sock.sendall(burst)
        return len(burst)

    def read_response(self):
        buf = b""
        while True:
            try:
                buf += self.tls.read(65536)
            except ssl.SSLWantReadError:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.inb.write(chunk)
                continue
            if b"\r\n\r\n" in buf:
                head, body = buf.split(b"\r\n\r\n", 1)
                want = [int(ln.split(b":")[1]) for ln in head.split(b"\r\n")
                        if ln.lower().startswith(b"content-length:")]
                if want and len(body) >= want[0]:
                    return head, body[:want[0]]
        return buf, b""


def test(env):
    w = standard_setup(env, workers=1)
    host, port = "api.origin.test", w.origin.port
    body = os.urandom(1500)
    head = (f"POST /sha256 HTTP/1.1\r\nHost: {host}:{port}\r\nX-Pad: {'p' * 1500}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()

    step(f"one byte per TLS record: {len(head) + len(body)} records in one sendall")
    c = BurstClient(w.mitmd.port, host, port, w.mitmd.ca_cert)
    n = c.send_burst(head + body)
    info(f"{n} bytes of ciphertext sent at once")
    resp_head, resp_body = c.read_response()
    check(resp_head.startswith(b"HTTP/1.1 200"), f"no 200: {resp_head[:200]!r}")
    got = json.loads(resp_body)
    check(got.get("sha256") == hashlib.sha256(body).hexdigest() and got.get("length") == 1500,
          f"the origin got another body: {got}")

    step("the next request on the same connection, as a burst too")
    c.send_burst(f"GET /hello HTTP/1.1\r\nHost: {host}:{port}\r\nX-Pad: {'q' * 2000}\r\n\r\n"
                 .encode())
    resp_head, resp_body = c.read_response()
    check(resp_head.startswith(b"HTTP/1.1 200") and resp_body, f"second: {resp_head[:200]!r}")
    c.sock.close()
    w.mitmd.check_no_crash()


if __name__ == "__main__":
    run(test, __doc__)
