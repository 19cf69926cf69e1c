"""ruleslib.py - helpers for the rules integration tests: an nginx whose HTTP/2 (and HTTP/1.1)
TLS port also answers /echo with the request fields it received (so a test asserts what the
origin saw), and curl through mitmd returning status, fields, body and HTTP version.
Builds on ../lib/harness.py; every process is stopped by PID when the test ends."""
import hashlib
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402

ECHO = ('    location /echo { default_type text/plain; add_header X-Drop-Me yes; '
        'add_header X-Origin echo; '
        'return 200 "x-env=$http_x_env\\nx-gone=$http_x_gone\\nuri=$request_uri\\n'
        'host=$host\\nproto=$server_protocol\\n"; }')


class EchoNginx(harness.Nginx):
    """EchoNginx is harness.Nginx with /echo on its h2 port (h2 and http/1.1 by ALPN)."""

    def _conf(self):
        conf = super()._conf()
        listen = f"    listen 127.0.0.1:{self.h2_port} ssl http2;"
        return conf.replace(listen, listen + "\n" + ECHO, 1)


def echo_nginx(env, pki, files):
    n = EchoNginx(env, pki, files)
    env.stack.callback(n.stop)
    n.start()
    return n


def setup(env, extra_args, files=None, flows=True):
    """setup starts the test PKI, the echo nginx and mitmd (--upstream-ca, *.origin.test
    resolved to 127.0.0.1, -w) with `extra_args`."""
    pki = env.pki()
    ngx = echo_nginx(env, pki, files or {"1k": os.urandom(1024)})
    flow_path = env.path("flows.jsonl") if flows else None
    args = ["--upstream-ca", pki.ca_cert, "--resolve", "*.origin.test=127.0.0.1"]
    if flow_path:
        args += ["-w", flow_path]
    m = env.mitmd(args=args + list(extra_args))
    return ngx, m, flow_path


def curl(m, url, http2=True, headers=(), timeout=20, extra=(), stdin=None):
    """curl fetches `url` through mitmd `m`. Returns (exit code, status, fields dict (lower-case
    names), body bytes, http version string, seconds taken)."""
    hdr_file = os.path.join(m.env.tmp if hasattr(m, "env") else "/tmp", f"h{time.monotonic_ns()}")
    argv = ["curl", "-sS", "-o", "-", "-D", hdr_file, "-x", f"http://127.0.0.1:{m.port}",
            "--cacert", m.ca_cert, "--suppress-connect-headers", "--max-time", str(timeout), "-w", "\n%{http_version}",
            "--http2" if http2 else "--http1.1"]
    for h in headers:
        argv += ["-H", h]
    argv += list(extra) + [url]
    t0 = time.monotonic()
    cp = subprocess.run(argv, capture_output=True, timeout=timeout + 10, input=stdin)
    took = time.monotonic() - t0
    out = cp.stdout
    cut = out.rfind(b"\n")
    body, version = out[:cut], out[cut + 1:].decode()
    status, fields = 0, {}
    try:
        with open(hdr_file, "rb") as f:
            blocks = f.read().decode("latin-1").strip().split("\r\n\r\n")
        lines = blocks[-1].split("\r\n")
        status = int(lines[0].split()[1])
        for ln in lines[1:]:
            if ":" in ln:
                k, v = ln.split(":", 1)
                fields[k.strip().lower()] = v.strip()
        os.unlink(hdr_file)
    except (FileNotFoundError, IndexError, ValueError):
        pass
    return cp.returncode, status, fields, body, version, took


def echo_fields(body):
    """echo_fields parses the /echo body into a dict."""
    return dict(ln.split("=", 1) for ln in body.decode().splitlines() if "=" in ln)


def sha(b):
    return hashlib.sha256(b).hexdigest()
