#!/usr/bin/env python3
"""WebSocket through mitmd (a plain absolute-form upgrade to a Python echo origin): the
messages arrive intact both ways, the -w record counts them (messages and bytes each way),
and with --set websocket_message_lines=true stdout has one line per message as mitmdump
prints them ("CLIENT -> WebSocket text message -> URL SIZE", "<-" for the server's); without
the option it has none; with --set websocket=false the connection is relayed as opaque bytes
and its flow is no WebSocket."""
import base64
import hashlib
import os
import socket
import struct
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (check, info, read_records, run, standard_setup, step,  # noqa: E402
                     wait_until)

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise OSError("closed")
        b += c
    return b


def read_frame(s):
    h = recv_exact(s, 2)
    op, n, masked = h[0] & 0x0F, h[1] & 0x7F, h[1] & 0x80
    if n == 126:
        n = struct.unpack("!H", recv_exact(s, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", recv_exact(s, 8))[0]
    key = recv_exact(s, 4) if masked else b""
    data = bytearray(recv_exact(s, n))
    if masked:
        for i in range(n):
            data[i] ^= key[i % 4]
    return op, bytes(data)


def frame(op, data, mask):
    n = len(data)
    head = bytes([0x80 | op])
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + data
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(data))


class EchoOrigin:
    """EchoOrigin accepts WebSocket upgrades on a free loopback port and echoes every data
    message back with the same opcode, until the client sends a close frame."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                head += c.recv(4096)
            key = [ln.split(b":", 1)[1].strip() for ln in head.split(b"\r\n")
                   if ln.lower().startswith(b"sec-websocket-key:")][0]
            acc = base64.b64encode(hashlib.sha1(key + GUID).digest())
            c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + acc + b"\r\n\r\n")
            while True:
                op, data = read_frame(c)
                if op == 8:
                    c.sendall(frame(8, data, False))
                    return
                c.sendall(frame(op, data, False))
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.sock.close()


def session(env, mitmd_port, origin_port, messages):
    """session upgrades through mitmd (absolute-form) and exchanges `messages` ((op, data)),
    checking each echo; returns after a clean close."""
    s = socket.create_connection(("127.0.0.1", mitmd_port), timeout=10)
    key = base64.b64encode(os.urandom(16))
    s.sendall(b"GET http://127.0.0.1:%d/chat HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
              b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
              b"Sec-WebSocket-Version: 13\r\n\r\n" % (origin_port, origin_port, key))
    head = b""
    while b"\r\n\r\n" not in head:
        c = s.recv(1)
        if not c:
            raise OSError("closed before the 101")
        head += c
    check(head.startswith(b"HTTP/1.1 101"), f"upgrade answered {head[:40]!r}")
    for op, data in messages:
        s.sendall(frame(op, data, True))
        rop, rdata = read_frame(s)
        check(rop == op and hashlib.sha256(rdata).digest() == hashlib.sha256(data).digest(),
              f"echo of a {len(data)}-byte message differs (opcode {rop})")
    s.sendall(frame(8, b"\x03\xe8", True))
    read_frame(s)
    s.close()


def test(env):
    origin = EchoOrigin()
    env.stack.callback(origin.close)
    msgs = [(1, b"hello"), (1, "é".encode() * 100), (2, os.urandom(70000)), (1, b"bye")]

    step("with --set websocket_message_lines=true: 4 messages each way, echoed intact")
    w = standard_setup(env, flows=True, origin=False,
                       extra_args=["--set", "websocket_message_lines=true"])
    session(env, w.mitmd.port, origin.port, msgs)
    url = f"http://127.0.0.1:{origin.port}/chat"
    lines = wait_until(lambda: (lambda ls: ls if len(ls) >= 8 else None)(
        [ln for ln in w.mitmd.stdout().splitlines() if "WebSocket" in ln]), 10)
    check(lines is not None, f"expected 8 message lines, stdout: {w.mitmd.stdout()[-800:]}")
    for ln in lines:
        info(ln)
    c2s = [ln for ln in lines if " -> WebSocket " in ln and ln.split(" -> ")[-1].startswith(url)]
    s2c = [ln for ln in lines if " <- WebSocket " in ln and ln.split(" <- ")[-1].startswith(url)]
    check(len(c2s) == 4 and len(s2c) == 4, f"{len(c2s)} client and {len(s2c)} server lines")
    check(sum("binary message" in ln for ln in lines) == 2, "the binary message, both ways")
    check(any(ln.endswith(" 5b") for ln in c2s), "the first message's size (5b) is printed")
    recs = wait_until(lambda: [r for r in read_records(w.flows) if r.get("websocket")], 10)
    check(recs, "no -w record with websocket counts")
    ws = recs[0]["websocket"]
    info(f"record: {ws}")
    check(ws.get("messages_sent") == 4 and ws.get("messages_received") == 4 and
          ws.get("bytes_sent") == sum(len(d) for _, d in msgs) == ws.get("bytes_received"),
          f"record counts {ws}")

    step("without the option: the same session prints no message line")
    m2 = env.mitmd(name="mitmd-plain", confdir=env.mkdir("conf-plain"))
    session(env, m2.port, origin.port, msgs)
    wait_until(lambda: "/chat" in m2.stdout(), 10)
    check("/chat" in m2.stdout(), "no flow line for the upgrade")
    check(not [ln for ln in m2.stdout().splitlines() if "WebSocket" in ln],
          "message lines printed without websocket_message_lines")

    step("--set websocket=false (mitmproxy's): the upgraded connection is relayed as opaque "
         "bytes, messages intact, no message lines, the record is no WebSocket")
    flows3 = env.path("raw.jsonl")
    m3 = env.mitmd(name="mitmd-raw", confdir=env.mkdir("conf-raw"),
                   args=["-w", flows3, "--set", "websocket=false",
                         "--set", "websocket_message_lines=true"])
    session(env, m3.port, origin.port, msgs)
    recs = wait_until(lambda: [r for r in read_records(flows3) if "/chat" in r["request"]["url"]],
                      10)
    check(recs and recs[0]["response"]["status"] == 101 and recs[0]["websocket"] is None,
          f"websocket=false record: {recs}")
    check("/chat HTTP/1.1 << 101" in m3.stdout(), f"flow line: {m3.stdout()[-400:]}")
    check(not [ln for ln in m3.stdout().splitlines() if "WebSocket" in ln],
          "message lines printed with websocket=false")


if __name__ == "__main__":
    run(test, __doc__)
