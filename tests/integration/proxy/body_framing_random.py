#!/usr/bin/env python3
"""Bodies relayed byte for byte whatever their framing and however they are cut (the pass
paths of worker/transport.c and worker/h1_relay.c): mitmd in reverse mode to a TLS origin of
this test's own, clients over TLS and in plain text. Each connection sends 1-6 pipelined POSTs
in one write, bodies by Content-Length or chunked (random chunk sizes); the origin answers each
with the SHA-256 of the request body it got and then seeded random bytes, framed by
Content-Length, chunked (chunk extensions, a trailer), to the connection's close, or as
HTTP/1.0, written in random pieces; half the clients read slowly in small pieces. Every
response must arrive whole and in order with nothing after the last one, and the flow records
must carry each exchange's request and response body sizes. Seeds are fixed: a failure names
the connection to replay."""
import hashlib
import os
import random
import select
import socket
import ssl
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, info, read_records, run, step, wait_until  # noqa: E402

CONNS = 32
SIZES = [0, 1, 100, 5000, 16383, 16384, 16385, 40000, 100000, 300000]
UPLOADS = [0, 0, 10, 3000, 20000, 70000]


def payload(size, seed, body):
    """payload is what the origin answers: the request body's SHA-256, '|', seeded bytes."""
    return hashlib.sha256(body).hexdigest().encode() + b"|" + random.Random(seed).randbytes(size)


# ---- the origin ------------------------------------------------------------------------


class Reader:
    """Reader parses from a blocking socket (the origin) or, with sock None, from bytes
    already received (the client)."""

    def __init__(self, sock, buf=b""):
        self.sock, self.buf = sock, buf

    def _more(self):
        d = self.sock.recv(65536) if self.sock is not None else b""
        self.buf += d
        return len(d) > 0

    def until(self, sep):
        while sep not in self.buf:
            if not self._more():
                return None
        i = self.buf.index(sep)
        out, self.buf = self.buf[:i], self.buf[i + len(sep):]
        return out

    def exactly(self, n):
        while len(self.buf) < n:
            if not self._more():
                return None
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def read_chunked(r):
    """read_chunked decodes a chunked body (extensions and trailers skipped); None on EOF."""
    body = b""
    while True:
        line = r.until(b"\r\n")
        if line is None:
            return None
        n = int(line.split(b";")[0], 16)
        if n == 0:
            while True:
                t = r.until(b"\r\n")
                if t is None:
                    return None
                if t == b"":
                    return body
        d = r.exactly(n + 2)
        if d is None:
            return None
        body += d[:n]


def chunked(data, rnd, most, ext, trailer):
    """chunked frames `data` in chunks of 1..most bytes, each size line followed by `ext`, and
    ends with the last chunk and `trailer` (field lines, each ending in CRLF)."""
    out, i = b"", 0
    while i < len(data):
        piece = data[i:i + rnd.randint(1, most)]
        out += b"%x%s\r\n" % (len(piece), ext) + piece + b"\r\n"
        i += len(piece)
    return out + b"0\r\n" + trailer + b"\r\n"


def send_pieces(sock, data, rnd, most):
    i = 0
    while i < len(data):
        k = rnd.randint(1, most)
        sock.sendall(data[i:i + k])
        i += k


def serve_one(sock, errors):
    r = Reader(sock)
    try:
        while True:
            head = r.until(b"\r\n\r\n")
            if head is None:
                return
            lines = head.split(b"\r\n")
            path = lines[0].split(b" ")[1].decode()
            fields = {}
            for ln in lines[1:]:
                k, v = ln.split(b":", 1)
                fields[k.strip().lower()] = v.strip()
            if b"content-length" in fields:
                body = r.exactly(int(fields[b"content-length"]))
            else:
                body = read_chunked(r)
            if body is None:
                return
            _, kind, size, seed = path.split("/")
            rnd = random.Random(int(seed) ^ 0x5eed)
            out = payload(int(size), int(seed), body)
            if kind == "cl":
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(out))
                send_pieces(sock, out, rnd, 20000)
            elif kind == "ch":
                wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(
                    out, rnd, 5000, b";ext=1", b"X-Trailer: yes\r\n")
                send_pieces(sock, wire, rnd, 9000)
            elif kind == "close":
                sock.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
                send_pieces(sock, out, rnd, 20000)
                return
            else:  # h10
                sock.sendall(b"HTTP/1.0 203 Fine Thanks\r\nContent-Length: %d\r\n\r\n" % len(out))
                send_pieces(sock, out, rnd, 20000)
                return
    except (OSError, ValueError) as e:
        errors.append(f"origin: {type(e).__name__}: {e}")
    finally:
        try:
            sock.close()
        except OSError:
            pass


def start_origin(pki, errors):
    """start_origin listens on 127.0.0.1 (TLS, the Pki's 'valid' certificate) and serves each
    connection in a thread. Returns (listening socket, port)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*pki.certs["valid"])
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(64)

    def accept_loop():
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return  # closed at the end of the test
            try:
                c.settimeout(20)
                c = ctx.wrap_socket(c, server_side=True)
            except (OSError, ssl.SSLError) as e:
                errors.append(f"origin TLS: {e}")
                continue
            threading.Thread(target=serve_one, args=(c, errors), daemon=True).start()

    threading.Thread(target=accept_loop, daemon=True).start()
    return ls, ls.getsockname()[1]


# ---- the clients -----------------------------------------------------------------------


def plan(seed):
    """plan returns the connection's requests [(kind, size, rseed, body)] and its bytes."""
    rnd = random.Random(seed)
    n = rnd.randint(1, 6)
    reqs, wire = [], b""
    for i in range(n):
        kind = rnd.choice(["cl", "ch"]) if i < n - 1 else rnd.choice(["cl", "ch", "close", "h10"])
        size, rseed = rnd.choice(SIZES), rnd.randrange(10**9)
        body = rnd.randbytes(rnd.choice(UPLOADS))
        path = b"/%s/%d/%d" % (kind.encode(), size, rseed)
        last = b"Connection: close\r\n" if i == n - 1 else b""
        if rnd.random() < 0.5:
            wire += b"POST %s HTTP/1.1\r\nHost: www.origin.test\r\n%sContent-Length: %d\r\n\r\n" % (
                path, last, len(body)) + body
        else:
            wire += b"POST %s HTTP/1.1\r\nHost: www.origin.test\r\n%sTransfer-Encoding: chunked\r\n\r\n" % (
                path, last) + chunked(body, rnd, 7000, b"", b"")
        reqs.append((kind, size, rseed, body))
    return reqs, wire


def exchange(s, wire, slow, rnd):
    """exchange writes `wire` while reading what comes back, in one thread (an SSL socket must
    not be read and written from two), until the peer closes. A slow reader takes 1,000 bytes
    per recv and now and then pauses. Returns the bytes received, or None after 30 s."""
    out, data = memoryview(wire), bytearray()
    piece = 1000 if slow else 65536
    blocked = (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError)
    deadline = time.monotonic() + 30
    s.setblocking(False)
    while time.monotonic() < deadline:
        moved = False
        if out:
            try:
                n = s.send(out[:16384])
                out, moved = out[n:], n > 0
            except blocked:
                pass
        try:
            d = s.recv(piece)
            if not d:
                return bytes(data)
            data += d
            moved = True
            if slow and rnd.random() < 0.05:
                time.sleep(0.005)
        except blocked:
            pass
        if not moved:
            select.select([s], [s] if out else [], [], 0.05)
    return None


def one_connection(port, seed, use_tls, slow, ca):
    """one_connection runs one planned connection; returns (requests, None) or (requests, why)."""
    reqs, wire = plan(seed)
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    try:
        if use_tls:
            ctx = ssl.create_default_context(cafile=ca)
            s = ctx.wrap_socket(s, server_hostname="www.origin.test")
        data = exchange(s, wire, slow, random.Random(seed + 1))
    finally:
        s.close()
    if data is None:
        return reqs, "no end within 30 s"
    r = Reader(None, data)
    for idx, (kind, size, rseed, body) in enumerate(reqs):
        want = payload(size, rseed, body)
        head = r.until(b"\r\n\r\n")
        if head is None:
            return reqs, f"response {idx + 1} of {len(reqs)} ({kind}) missing"
        lines = head.decode(errors="replace").split("\r\n")
        status = "HTTP/1.0 203" if kind == "h10" else "HTTP/1.1 200"
        if not lines[0].startswith(status):
            return reqs, f"response {idx + 1}: status line {lines[0]!r}, want {status}"
        fields = {ln.split(":", 1)[0].lower(): ln.split(":", 1)[1].strip() for ln in lines[1:]}
        if "content-length" in fields:
            got = r.exactly(int(fields["content-length"]))
        elif fields.get("transfer-encoding", "").lower() == "chunked":
            got = read_chunked(r)
        else:
            got, r.buf = r.buf, b""
        if got != want:
            got = got or b""
            return reqs, (f"response {idx + 1} ({kind}, {size} B): {len(got)} bytes, sha256 "
                          f"{hashlib.sha256(got).hexdigest()[:16]}, want {len(want)} bytes, "
                          f"sha256 {hashlib.sha256(want).hexdigest()[:16]}")
    if r.buf:
        return reqs, f"{len(r.buf)} bytes after the last response"
    return reqs, None


def test(env):
    pki = env.pki()
    errors = []
    ls, oport = start_origin(pki, errors)
    env.stack.callback(ls.close)
    flows = env.path("flows.jsonl")
    m = env.mitmd(args=["--mode", f"reverse:https://www.origin.test:{oport}", "--upstream-ca",
                        pki.ca_cert, "--resolve", "*.origin.test=127.0.0.1", "-w", flows],
                  workers=1)

    step(f"{CONNS} connections of pipelined POSTs, TLS and plain clients, half of them slow")
    sent = {}
    for seed in range(CONNS):
        use_tls, slow = seed % 2 == 0, seed % 4 < 2
        reqs, why = one_connection(m.port, 1000 + seed, use_tls, slow, m.ca_cert)
        check(why is None, f"connection seed {1000 + seed} ({'TLS' if use_tls else 'plain'}"
              f"{', slow' if slow else ''}): {why}")
        for kind, size, rseed, body in reqs:
            sent[f"/{kind}/{size}/{rseed}"] = (len(body), 65 + size)  # hex SHA-256, "|", bytes
    info(f"{len(sent)} exchanges byte-exact")
    check(not errors, f"origin errors: {errors[:3]}")

    step("every exchange is recorded with its request and response body sizes")
    check(wait_until(lambda: len(read_records(flows)) >= len(sent), 10),
          f"{len(read_records(flows))} records, want {len(sent)}")
    for rec in read_records(flows):
        path = "/" + rec["request"]["url"].split("/", 3)[3]
        check(path in sent, f"a record for {path}, which was not sent")
        req_len, resp_len = sent[path]
        check(rec["request"]["bodySize"] == req_len and rec["response"]["bodySize"] == resp_len,
              f"{path}: recorded bodySize request {rec['request']['bodySize']} response "
              f"{rec['response']['bodySize']}, sent {req_len} and {resp_len}")
    m.check_no_crash()


if __name__ == "__main__":
    run(test, __doc__)
