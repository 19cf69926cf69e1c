"""accesslib.py - helpers of the access/ integration tests: origins that echo the request
fields they received (lib/origin.py /headers), curl through the proxy with --proxy-user, raw
proxy requests whose answer heads are read exactly, and an RFC 1929 SOCKS5 client. Python 3
standard library only; builds on tests/integration/lib/harness.py. Loopback only."""

import argparse
import base64
import json
import os
import secrets
import socket
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (TestFailure, check, parse_status, read_head, recv_all)  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "modes"))
from socks5lib import recv_exact, socks5_request_bytes  # noqa: E402,F401

CHALLENGE = 'Basic realm="mitmd"'


def setup(env, extra_args=(), tls=True, plain=True, workers=1):
    """setup starts a TLS origin (test PKI) and a plain one, both answering /headers with the
    request fields they saw, and mitmd trusting the test CA with *.origin.test -> 127.0.0.1."""
    pki = env.pki()
    tls_origin = env.origin(pki) if tls else None
    plain_origin = env.origin(None) if plain else None
    args = ["--upstream-ca", pki.ca_cert, "--resolve", "*.origin.test=127.0.0.1"]
    m = env.mitmd(args=args + list(extra_args), workers=workers)
    return argparse.Namespace(pki=pki, tls=tls_origin, plain=plain_origin, mitmd=m)


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def curl(env, args, url, cafile=None, timeout=15):
    """curl runs curl with `args` (proxy options) on url. Returns (rc, http_code,
    connect_code, body, stderr); the codes are curl's %{http_code} and %{http_connect}."""
    out = env.path(f"curl-{secrets.token_hex(4)}.out")
    argv = ["curl", "-sS", "-o", out, "-w", "%{http_code} %{http_connect}",
            "--max-time", str(timeout)] + list(args)
    if cafile:
        argv += ["--cacert", cafile]
    argv.append(url)
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 5)
    body = b""
    if os.path.exists(out):
        with open(out, "rb") as f:
            body = f.read()
        os.unlink(out)
    parts = cp.stdout.split()
    code = int(parts[0]) if len(parts) > 0 and parts[0].isdigit() else 0
    connect = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    return cp.returncode, code, connect, body, cp.stderr

def curl_direct(env, args, url, timeout=15, noproxy=""):
    """curl_direct runs curl to `url` itself (mitmd as the server: reverse or transparent
    mode; no proxy unless `args` name one, `noproxy="*"` refuses any) and returns (code,
    version, lower-cased response headers, body + stderr)."""
    out, hdr = env.path("c.out"), env.path("c.hdr")
    cp = subprocess.run(["curl", "-sS", "--noproxy", noproxy, "-o", out, "-D", hdr, "-w",
                         "%{http_code} %{http_version}", "--max-time", str(timeout)] +
                        list(args) + [url], capture_output=True, text=True, timeout=timeout + 5)
    parts = cp.stdout.split()
    body = open(out, "rb").read() if os.path.exists(out) else b""
    heads = open(hdr, "r", errors="replace").read().lower() if os.path.exists(hdr) else ""
    for p in (out, hdr):
        if os.path.exists(p):
            os.unlink(p)
    code = int(parts[0]) if parts and parts[0].isdigit() else 0
    return code, parts[1] if len(parts) > 1 else "", heads, body + cp.stderr.encode()


def echoed_fields(body):
    """echoed_fields returns the lower-cased field names an origin's /headers body lists."""
    try:
        return [k.lower() for k, _ in json.loads(body)]
    except ValueError:
        raise TestFailure(f"the origin's /headers answer is not JSON: {body[:200]!r}")


def read_answer(sock):
    """read_answer reads one response (head and Content-Length body). Returns (status,
    {lower-name: value}, body); status 0 when the proxy closed first."""
    head, rest = read_head(sock)
    if not head:
        return 0, {}, b""
    status, _, hdrs = parse_status(head)
    n = int(hdrs.get("content-length", "-1"))
    body = rest
    if n < 0:
        body += recv_all(sock, 5)
    while len(body) < n:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, hdrs, body


def raw_request(port, data, host="127.0.0.1", family=socket.AF_INET, timeout=10):
    """raw_request sends `data` on a new connection and reads the answer (read_answer)."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect((host, port))
    try:
        sock.sendall(data)
        return read_answer(sock)
    finally:
        sock.close()


def check_407(status, hdrs, what):
    check(status == 407, f"{what}: answered {status}, expected 407")
    check(hdrs.get("proxy-authenticate") == CHALLENGE,
          f"{what}: Proxy-Authenticate is {hdrs.get('proxy-authenticate')!r}, "
          f"expected {CHALLENGE!r}")



def socks5_login(proxy_port, methods, user=None, password=None, timeout=10.0):
    """socks5_login greets offering `methods` (bytes) and, when the proxy picks 0x02, sends
    the RFC 1929 request. Returns (sock, method_reply, auth_reply or None)."""
    sock = socket.create_connection(("127.0.0.1", proxy_port), timeout=timeout)
    sock.sendall(bytes([5, len(methods)]) + methods)
    method = recv_exact(sock, 2, timeout)
    if method != b"\x05\x02" or user is None:
        return sock, method, None
    u, p = user.encode(), password.encode()
    sock.sendall(bytes([1, len(u)]) + u + bytes([len(p)]) + p)
    return sock, method, recv_exact(sock, 2, timeout)


def socks5_request(sock, host, port, timeout=10.0):
    """socks5_request sends a CONNECT to a domain and returns the reply code (None: closed)."""
    sock.sendall(socks5_request_bytes(host, port))
    reply = recv_exact(sock, 10, timeout)
    return reply[1] if len(reply) >= 2 else None