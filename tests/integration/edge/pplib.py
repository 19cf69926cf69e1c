"""pplib.py - helpers of the edge/ integration tests: PROXY protocol headers (v1 text, v2
binary), a CONNECT + TLS exchange behind one, and the flow records and console lines of a
mitmd run. Python 3 standard library only; builds on tests/integration/lib/harness.py."""

import ipaddress
import json
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (TestFailure, check, read_head, parse_status, read_http_response,  # noqa: E402,E501
                     tls_over)

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v1_header(src, dst, sport, dport):
    """v1_header returns 'PROXY TCP4|TCP6 src dst sport dport\\r\\n'."""
    fam = "TCP6" if ":" in src else "TCP4"
    return f"PROXY {fam} {src} {dst} {sport} {dport}\r\n".encode()


def v2_header(src=None, dst=None, sport=0, dport=0, tlvs=b"", local=False):
    """v2_header returns a v2 PROXY (or LOCAL) header with optional raw TLV bytes."""
    if local:
        return V2_SIG + b"\x20\x00" + struct.pack("!H", len(tlvs)) + tlvs
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    fam = b"\x21" if s.version == 6 else b"\x11"
    block = s.packed + d.packed + struct.pack("!HH", sport, dport) + tlvs
    return V2_SIG + b"\x21" + fam + struct.pack("!H", len(block)) + block


def tlv(kind, value):
    return bytes([kind]) + struct.pack("!H", len(value)) + value


def connect_exchange(proxy_port, header, host, port, cafile, path="/1k", split=False,
                     source=None):
    """connect_exchange sends `header` then a CONNECT to host:port in one write (or, with
    split, the header a byte at a time first), runs TLS verifying against `cafile` and GETs
    `path`. Returns (status, body, local (addr, port) of the client socket)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(10)
    if source is not None:
        sock.bind((source, 0))
    sock.connect(("127.0.0.1", proxy_port))
    local = sock.getsockname()
    connect = f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if split:
        for i in range(len(header)):
            sock.sendall(header[i:i + 1])
        sock.sendall(connect)
    else:
        sock.sendall(header + connect)
    head, rest = read_head(sock)
    if not head:
        sock.close()
        raise TestFailure("mitmd closed the connection instead of answering the CONNECT")
    status, _, _ = parse_status(head)
    check(status == 200, f"CONNECT answered {status}: {head!r}")
    check(rest == b"", f"{len(rest)} unexpected bytes after the 200")
    tls = tls_over(sock, host, cafile)
    tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
                .encode())
    status, _, body = read_http_response(tls)
    tls.close()
    return status, body, local


def read_records(path):
    """read_records returns the JSON objects of a -w file (one per line)."""
    recs = []
    if not os.path.exists(path):
        return recs
    with open(path, "rb") as f:
        raw = f.read()
    for i, line in enumerate(raw.decode().splitlines()):
        try:
            recs.append(json.loads(line))
        except ValueError as e:
            raise TestFailure(f"-w line {i + 1} is not JSON ({e}): {line[:200]!r}")
    return recs
