#!/usr/bin/env python3
"""idle_hold.py - opens N idle TLS connections through a proxy and holds them.

Each connection is a CONNECT tunnel (or, with --direct, a plain TCP connection to a
TLS-terminating server) with a completed, verified TLS handshake (ALPN http/1.1) and no
request. At most --inflight handshakes run at once. When N are up, or --deadline passes, it
prints one JSON line {"established", "failed", "seconds", "first_error"} on stdout and holds
every established connection until its stdin reaches EOF (or SIGTERM), then closes them.
Standard library only; one thread, non-blocking sockets and a selector.
"""
import argparse
import json
import selectors
import signal
import socket
import ssl
import sys
import time


class Conn:
    __slots__ = ("sock", "state", "buf", "tls")

    def __init__(self, sock, state):
        self.sock = sock
        self.state = state  # "connect", "proxy_send", "proxy_recv", "tls", "done"
        self.buf = b""
        self.tls = None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", required=True, help="HOST:PORT to dial (the proxy, or the "
                    "TLS server with --direct)")
    ap.add_argument("--target", help="HOST:PORT to CONNECT to (not with --direct)")
    ap.add_argument("--sni", required=True, help="server name for SNI and verification")
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--direct", action="store_true", help="no CONNECT: TLS right away")
    ap.add_argument("-n", type=int, required=True, help="connections to establish")
    ap.add_argument("--inflight", type=int, default=64)
    ap.add_argument("--deadline", type=float, default=60.0, help="seconds")
    a = ap.parse_args()
    if not a.direct and not a.target:
        ap.error("--target is required without --direct")

    host, port = a.server.rsplit(":", 1)
    addr = (host, int(port))
    ctx = ssl.create_default_context(cafile=a.cafile)
    ctx.set_alpn_protocols(["http/1.1"])
    connect_req = ("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (a.target, a.target)).encode() \
        if not a.direct else b""

    sel = selectors.DefaultSelector()
    held, started, failed, pending = [], 0, 0, 0
    first_error = None
    t0 = time.monotonic()

    def fail(c, why):
        nonlocal failed, first_error, pending
        failed += 1
        pending -= 1
        if first_error is None:
            first_error = why
        try:
            sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        (c.tls or c.sock).close()

    def open_one():
        nonlocal started, pending
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        started += 1
        pending += 1
        c = Conn(s, "connect")
        err = s.connect_ex(addr)
        if err not in (0, 115):  # EINPROGRESS
            fail(c, "connect: errno %d" % err)
            return
        sel.register(s, selectors.EVENT_WRITE, c)

    def start_tls(c):
        # wrap_socket detaches the plain socket object: re-register under the TLS one.
        sel.unregister(c.sock)
        c.tls = ctx.wrap_socket(c.sock, server_hostname=a.sni, do_handshake_on_connect=False)
        c.sock = c.tls
        c.state = "tls"
        sel.register(c.sock, selectors.EVENT_WRITE, c)

    def step(c):
        nonlocal pending
        if c.state == "connect":
            err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err != 0:
                return fail(c, "connect: errno %d" % err)
            if a.direct:
                return start_tls(c)
            c.state, c.buf = "proxy_send", connect_req
        if c.state == "proxy_send":
            try:
                n = c.sock.send(c.buf)
            except BlockingIOError:
                return
            except OSError as e:
                return fail(c, "sending CONNECT: %s" % e)
            c.buf = c.buf[n:]
            if c.buf:
                return
            c.state = "proxy_recv"
            sel.modify(c.sock, selectors.EVENT_READ, c)
            return
        if c.state == "proxy_recv":
            try:
                d = c.sock.recv(4096)
            except BlockingIOError:
                return
            except OSError as e:
                return fail(c, "reading CONNECT reply: %s" % e)
            if not d:
                return fail(c, "proxy closed before answering CONNECT")
            c.buf += d
            if b"\r\n\r\n" not in c.buf:
                if len(c.buf) > 16384:
                    return fail(c, "CONNECT reply too long")
                return
            head, _, rest = c.buf.partition(b"\r\n\r\n")
            status = head.split(b"\r\n", 1)[0].split()
            if len(status) < 2 or status[1] != b"200":
                return fail(c, "CONNECT answered %r" % head.split(b"\r\n", 1)[0])
            if rest:
                return fail(c, "proxy sent bytes before the TLS handshake")
            c.buf = b""
            return start_tls(c)
        if c.state == "tls":
            try:
                c.tls.do_handshake()
            except ssl.SSLWantReadError:
                sel.modify(c.sock, selectors.EVENT_READ, c)
                return
            except ssl.SSLWantWriteError:
                sel.modify(c.sock, selectors.EVENT_WRITE, c)
                return
            except (ssl.SSLError, OSError) as e:
                return fail(c, "TLS: %s" % e)
            sel.unregister(c.sock)
            c.state = "done"
            pending -= 1
            held.append(c)

    while len(held) < a.n and time.monotonic() - t0 < a.deadline:
        while pending < a.inflight and started - failed < a.n:
            open_one()
        if failed > a.n:  # everything fails: stop early
            break
        for key, _ in sel.select(0.5):
            step(key.data)
    for key in list(sel.get_map().values()):  # abandon handshakes still running
        sel.unregister(key.fileobj)
        key.fileobj.close()
    print(json.dumps({"established": len(held), "failed": failed,
                      "seconds": round(time.monotonic() - t0, 3), "first_error": first_error}),
          flush=True)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while sys.stdin.buffer.read(4096):
            pass
    finally:
        for c in held:
            c.tls.close()


if __name__ == "__main__":
    main()
