#!/usr/bin/env python3
"""origin.py - a tiny HTTP/1.1 origin (optionally TLS) for mitmd's integration tests.

Owns the dynamic endpoints nginx cannot serve; prints "listening PORT" on stdout once ready.
  GET  /hello                      fixed small body with Content-Length
  GET  /conn                       X-Conn-Id / X-Peer-Port of the server-side connection;
                                   JSON body also has the Host header, the TLS SNI and
                                   whether the request came over TLS
  GET  /stats                      JSON: every accepted connection id + the current one
  GET  /chunked?chunks=N&size=B&delay=S   Transfer-Encoding: chunked, sleeping between chunks
  GET  /stream?chunks=N&size=B&delay=S    no length, body ends when the connection closes
  GET  /status?code=N              an empty response with that status (204, 304, ...)
  GET  /truncated?announce=N&send=M  Content-Length N, then M < N bytes, then close
  POST /sha256                     JSON {"sha256":..., "length":...} of the request body
                                   (Content-Length or chunked)
Never listens on anything but 127.0.0.1; the TLS handshake runs in the connection's thread.
"""

import argparse
import hashlib
import http.server
import json
import socket
import ssl
import sys
import threading
import time
import urllib.parse


def chunk_bytes(i, size):
    """chunk_bytes is the body of chunk i: 'chunk i\\n' padded with '.' to size bytes
    (tests rebuild the expected body with the same rule)."""
    head = f"chunk {i}\n".encode()
    return head + b"." * max(0, size - len(head))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mitmd-test-origin"

    def setup(self):
        srv = self.server
        with srv.lock:
            srv.next_id += 1
            self.conn_id = srv.next_id
            srv.conns.append(self.conn_id)
        self.peer_port = self.client_address[1]
        if srv.tls_ctx is not None:
            self.request.settimeout(10)
            self.request = srv.tls_ctx.wrap_socket(self.request, server_side=True)
        self.request.settimeout(60)
        super().setup()

    def log_message(self, fmt, *args):
        sys.stderr.write(f"origin conn {getattr(self, 'conn_id', '?')}: {fmt % args}\n")

    def _query(self):
        q = urllib.parse.urlparse(self.path).query
        return {k: v[-1] for k, v in urllib.parse.parse_qs(q).items()}

    def _send(self, code, body, ctype="text/plain", extra=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Conn-Id", str(self.conn_id))
        self.send_header("X-Peer-Port", str(self.peer_port))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        route = urllib.parse.urlparse(self.path).path
        q = self._query()
        if route == "/hello":
            self._send(200, b"hello from origin\n")
        elif route == "/conn":
            body = json.dumps({"conn_id": self.conn_id, "peer_port": self.peer_port,
                               "host": self.headers.get("Host"),
                               "sni": getattr(self.request, "sni_name", None),
                               "tls": isinstance(self.request, ssl.SSLSocket)}).encode()
            self._send(200, body, "application/json")
        elif route == "/headers":
            # the request's fields as received, in order; ?hop=1 answers with fields that are
            # for this hop only (Connection names X-Internal), which must not reach the client
            body = json.dumps([[k, v] for k, v in self.headers.items()]).encode()
            extra = ()
            if q.get("hop") == "1":
                extra = (("Connection", "X-Internal"), ("X-Internal", "origin-only"),
                         ("Keep-Alive", "timeout=5"))
            self._send(200, body, "application/json", extra)
        elif route == "/stats":
            with self.server.lock:
                conns = list(self.server.conns)
            body = json.dumps({"connections": conns, "current": self.conn_id}).encode()
            self._send(200, body, "application/json")
        elif route == "/status":
            code = int(q.get("code", "204"))
            self.send_response(code)
            self.send_header("X-Conn-Id", str(self.conn_id))
            if code not in (204, 304):
                self.send_header("Content-Length", "0")
            self.end_headers()
        elif route == "/truncated":
            announce, send = int(q.get("announce", "1000")), int(q.get("send", "100"))
            self.send_response(200)
            self.send_header("Content-Length", str(announce))
            self.end_headers()
            self.wfile.write(b"t" * send)
            self.wfile.flush()
            self.close_connection = True
        elif route in ("/chunked", "/stream"):
            self._slow_body(route == "/chunked", int(q.get("chunks", "4")),
                            int(q.get("size", "64")), float(q.get("delay", "0.5")))
        else:
            self._send(404, b"no such path\n")

    def _slow_body(self, chunked, chunks, size, delay):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("X-Conn-Id", str(self.conn_id))
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.flush()
        for i in range(chunks):
            data = chunk_bytes(i, size)
            if chunked:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            else:
                self.wfile.write(data)
            self.wfile.flush()
            sys.stderr.write(f"origin conn {self.conn_id}: sent chunk {i} at {time.time():.3f}\n")
            if i + 1 < chunks:
                time.sleep(delay)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    def _read_body(self):
        h = hashlib.sha256()
        n = 0
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                left = size
                while left:
                    data = self.rfile.read(min(left, 1 << 16))
                    if not data:
                        raise ConnectionError("body cut off")
                    h.update(data)
                    left -= len(data)
                    n += len(data)
                self.rfile.readline(16)
        else:
            left = int(self.headers.get("Content-Length", "0"))
            while left:
                data = self.rfile.read(min(left, 1 << 16))
                if not data:
                    raise ConnectionError("body cut off")
                h.update(data)
                left -= len(data)
                n += len(data)
        return h.hexdigest(), n

    def do_POST(self):
        route = urllib.parse.urlparse(self.path).path
        digest, n = self._read_body()
        if route == "/sha256":
            body = json.dumps({"sha256": digest, "length": n}).encode()
            self._send(200, body, "application/json")
        else:
            self._send(404, b"no such path\n")


def remember_sni(sock, name, ctx):
    """remember_sni keeps the client's SNI on the TLS socket for /conn to report."""
    sock.sni_name = name
    return None


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512

    def __init__(self, addr, tls_ctx):
        self.lock = threading.Lock()
        self.next_id = 0
        self.conns = []
        self.tls_ctx = tls_ctx
        super().__init__(addr, Handler)

    def handle_error(self, request, client_address):
        sys.stderr.write(f"origin: error with {client_address}: {sys.exc_info()[1]!r}\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    args = ap.parse_args()
    ctx = None
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        ctx.set_alpn_protocols(["http/1.1"])
        ctx.sni_callback = remember_sni
    srv = Server(("127.0.0.1", args.port), ctx)
    srv.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    print(f"listening {srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
