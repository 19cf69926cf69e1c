"""socks5lib: a hand-written SOCKS5 client (RFC 1928) for the modes tests, and curl through a
SOCKS5 proxy. Loopback only."""
import ipaddress
import os
import secrets
import socket
import struct
import subprocess

REPLY_NAMES = {0: "succeeded", 1: "general failure", 2: "not allowed", 3: "network unreachable",
               4: "host unreachable", 5: "connection refused", 6: "TTL expired",
               7: "command not supported", 8: "address type not supported"}


def recv_exact(sock, n, timeout=10.0):
    """recv_exact reads n bytes, or fewer when the peer closes first."""
    sock.settimeout(timeout)
    data = b""
    while len(data) < n:
        try:
            chunk = sock.recv(n - len(data))
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        data += chunk
    return data


def socks5_request_bytes(host, port, cmd=1):
    """socks5_request_bytes builds a request: IPv4/IPv6 literals as such, names as domains."""
    try:
        ip = ipaddress.ip_address(host)
        atyp = b"\x01" if ip.version == 4 else b"\x04"
        addr = ip.packed
    except ValueError:
        atyp = b"\x03"
        addr = bytes([len(host)]) + host.encode()
    return bytes([5, cmd, 0]) + atyp + addr + struct.pack(">H", port)


def socks5_connect(proxy_port, host, port, cmd=1, timeout=10.0):
    """socks5_connect greets with 'no authentication' and sends a request. Returns
    (sock, method_reply, reply_code or None); the socket is open for what follows."""
    sock = socket.create_connection(("127.0.0.1", proxy_port), timeout=timeout)
    sock.sendall(b"\x05\x01\x00")
    method = recv_exact(sock, 2, timeout)
    if method != b"\x05\x00":
        return sock, method, None
    sock.sendall(socks5_request_bytes(host, port, cmd))
    reply = recv_exact(sock, 10, timeout)
    if len(reply) < 2:
        return sock, method, None
    return sock, method, reply[1]


def curl_socks(env, proxy_port, url, hostname=True, cafile=None, extra=(), timeout=30):
    """curl_socks fetches url through the SOCKS5 proxy (--socks5-hostname, or --socks5 when
    not hostname); returns (http_code, body_bytes, stderr_text)."""
    out = env.path(f"curl-{secrets.token_hex(4)}.out")
    flag = "--socks5-hostname" if hostname else "--socks5"
    argv = ["curl", "-sS", flag, f"127.0.0.1:{proxy_port}", "-o", out, "-w", "%{http_code}",
            "--max-time", str(timeout)]
    if cafile:
        argv += ["--cacert", cafile]
    argv += list(extra) + [url]
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 5)
    body = b""
    if os.path.exists(out):
        with open(out, "rb") as f:
            body = f.read()
        os.unlink(out)
    code = int(cp.stdout.strip()) if cp.stdout.strip().isdigit() else 0
    return code, body, cp.stderr
