#!/usr/bin/env python3
"""bench/retry_test.py - mitmd-bench retries a GET once when a reused keep-alive connection
closes before any byte of its response (RFC 9112 9.3.1), and never a POST.

A TLS origin (Python ssl, a throwaway certificate from openssl) answers the first request
of every connection with a keep-alive 200 and then, on the second request, closes the
connection with a TCP reset without answering: the race of a server closing an idle
keep-alive connection as the client reuses it. Usage: retry_test.py MITMD_BENCH.
Exit 0 on success, 77 when openssl is missing, 1 on failure."""
import json
import os
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading


def origin(ctx, lsock, stop):
    def serve(raw):
        try:
            t = ctx.wrap_socket(raw, server_hostname=None, server_side=True)
            f = t.makefile("rb")
            served = 0
            while True:
                line = f.readline()
                if not line:
                    return
                length = 0
                while True:
                    h = f.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    if h.lower().startswith(b"content-length:"):
                        length = int(h.split(b":")[1])
                if length:
                    f.read(length)
                if served == 1:  # the reused connection: reset without an answer
                    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    raw.close()
                    return
                t.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                served += 1
        except (OSError, ssl.SSLError):
            pass
        finally:
            raw.close()

    while not stop.is_set():
        try:
            raw, _ = lsock.accept()
        except OSError:
            return
        threading.Thread(target=serve, args=(raw,), daemon=True).start()


def run_bench(bench, port, ca, tmp, extra):
    out = os.path.join(tmp, "r.json")
    p = subprocess.run([bench, "--connect", f"127.0.0.1:{port}", "--host", "localhost",
                        "--cafile", ca, "-c", "1", "-t", "1", "-n", "6", "--json", out] + extra,
                       capture_output=True, text=True, timeout=60)
    with open(out) as fh:
        return p.returncode, json.load(fh), p.stdout + p.stderr


def main():
    bench = sys.argv[1]
    if shutil.which("openssl") is None:
        print("SKIP: openssl not installed")
        return 77
    tmp = tempfile.mkdtemp(prefix="mitmd-bench-retry.")
    stop = threading.Event()
    lsock = socket.socket()
    try:
        key, crt = os.path.join(tmp, "k.pem"), os.path.join(tmp, "c.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost", "-keyout", key, "-out", crt],
                       check=True, capture_output=True)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, key)
        ctx.set_alpn_protocols(["http/1.1"])
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(16)
        threading.Thread(target=origin, args=(ctx, lsock, stop), daemon=True).start()
        port = lsock.getsockname()[1]

        # GET: every second request hits the reset, is retried on a new connection, succeeds
        rc, r, text = run_bench(bench, port, crt, tmp, [])
        print(f"GET: exit {rc}, requests {r['requests']}, errors {r['errors']}, "
              f"retried {r.get('retried')}")
        if rc != 0 or r["requests"] != 6 or r["errors"] != 0 or r.get("retried", 0) < 2:
            print("FAIL: GETs should all succeed, with the reset ones retried\n" + text)
            return 1
        # POST is not idempotent: the same reset is counted as a failure, never retried
        rc, r, text = run_bench(bench, port, crt, tmp, ["--body-size", "10"])
        print(f"POST: exit {rc}, requests {r['requests']}, errors {r['errors']}, "
              f"retried {r.get('retried')}")
        if rc == 0 or r["errors"] == 0 or r.get("retried", 0) != 0:
            print("FAIL: a POST on a reset connection must fail and not be retried\n" + text)
            return 1
        print("PASS")
        return 0
    finally:
        stop.set()
        lsock.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
