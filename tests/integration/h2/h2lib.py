"""h2lib.py - helpers for the HTTP/2 integration tests (Python 3 standard library only).

Owns: the --h2peer argument, the h2peer origin and client processes, raw HTTP/2 frames over
TLS through a mitmd CONNECT tunnel (frame headers and GOAWAY payloads only, never HPACK),
the master's stats line and the JSONL flow records. Builds on ../lib/harness.py.
"""

import json
import os
import re
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import TestFailure, check, info, mitmd_stats, wait_stat, wait_until  # noqa: E402,F401

H2PEER = None


def take_h2peer_arg():
    """take_h2peer_arg removes `--h2peer PATH` from sys.argv (harness.run parses the rest)."""
    global H2PEER
    argv = sys.argv
    if "--h2peer" in argv:
        i = argv.index("--h2peer")
        if i + 1 >= len(argv):
            print("FAIL: --h2peer needs a path")
            sys.exit(1)
        H2PEER = os.path.abspath(argv[i + 1])
        del argv[i:i + 2]
    if H2PEER is None or not os.access(H2PEER, os.X_OK):
        print(f"FAIL: h2peer binary not given or not executable ({H2PEER}); "
              "run with --h2peer BUILD/h2peer")
        sys.exit(1)


def pattern_bytes(n):
    """pattern_bytes is the body h2peer generates for /bytes/N and uploads of N bytes."""
    block = bytes(range(251))
    return (block * (n // 251 + 1))[:n]


# ---- h2peer ------------------------------------------------------------------------------


class H2Origin:
    """H2Origin is `h2peer server`: a TLS HTTP/2-only origin with the Pki 'valid' cert.
    Paths: GET /bytes/N, GET /drip/N (N x 1000 bytes, one per 50 ms), POST /sha256.
    Each happening is one line in its log (request/close/rst-recv/goaway-sent/...)."""

    def __init__(self, env, pki, goaway_after=0, name="h2origin", window=0):
        self.env = env
        self.pki = pki
        self.goaway_after = goaway_after
        self.window = window  # receive window it advertises; 0 = nghttp2's 64 KiB
        self.log = env.path(f"{name}.log")
        self.err = env.path(f"{name}.stderr")
        self.proc = None
        self.port = None

    def start(self):
        crt, key = self.pki.certs["valid"]
        argv = [H2PEER, "server", "--cert", crt, "--key", key, "--log", self.log]
        if self.goaway_after:
            argv += ["--goaway-after", str(self.goaway_after)]
        if self.window:
            argv += ["--window", str(self.window)]
        open(self.log, "a").close()
        self.env.add_log("h2peer server log", self.log)
        self.env.add_log("h2peer server stderr", self.err)
        with open(self.err, "ab") as err:
            self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err,
                                         stdin=subprocess.DEVNULL,
                                         preexec_fn=harness._pdeathsig)
        line = self.proc.stdout.readline().decode()
        m = re.match(r"listening (\d+)", line)
        if not m:
            raise TestFailure(f"h2peer server did not start: {line!r} {harness.tail(self.err)}")
        self.port = int(m.group(1))
        info(f"h2peer origin pid {self.proc.pid} on port {self.port}")
        return self

    def events(self, kind=None):
        """events returns the log lines as dicts {'kind':..., key: value}."""
        out = []
        with open(self.log, "r", errors="replace") as f:
            for line in f:
                parts = line.split()
                if not parts:
                    continue
                ev = {"kind": parts[0]}
                for p in parts[1:]:
                    k, _, v = p.partition("=")
                    ev[k] = v
                if kind is None or ev["kind"] == kind:
                    out.append(ev)
        return out

    def stop(self):
        if self.proc is not None:
            harness.stop_popen(self.proc, grace=3.0)
            self.proc.stdout.close()


def h2_origin(env, pki, goaway_after=0, name="h2origin", window=0):
    o = H2Origin(env, pki, goaway_after, name, window)
    env.stack.callback(o.stop)
    return o.start()


def h2_client(env, m, host, port, n=1, path="/bytes/1000", reset=None, upload=None,
              timeout=15, stagger_ms=0):
    """h2_client runs `h2peer client` through mitmd m (one connection, n streams) and returns
    its JSON report (stream i is opened at i x stagger_ms ms; one nghttp2 would not open
    because of a GOAWAY has id 0 and close_code 7): alpn, timed_out, conn_ended, goaway,
    streams[{id,status,bytes,sha256,closed,close_code,reset_sent,reset_recv}]."""
    argv = [H2PEER, "client", "--proxy", f"127.0.0.1:{m.port}", "--connect", f"{host}:{port}",
            "--ca", m.ca_cert, "-n", str(n), "--path", path, "--timeout", str(timeout)]
    if reset is not None:
        argv += ["--reset", str(reset)]
    if upload is not None:
        argv += ["--upload", str(upload)]
    if stagger_ms:
        argv += ["--stagger", str(stagger_ms)]
    cp = env.run_cmd(argv, timeout=timeout + 10)
    if cp.returncode != 0:
        raise TestFailure(f"h2peer client exited {cp.returncode}: {cp.stderr.strip()}")
    try:
        return json.loads(cp.stdout)
    except ValueError:
        raise TestFailure(f"h2peer client printed no JSON: {cp.stdout!r} {cp.stderr!r}")


# ---- mitmd stats and flows ---------------------------------------------------------------

def read_flows(path):
    """read_flows parses the -w JSON Lines file."""
    if not os.path.exists(path):
        return []
    with open(path, "r", errors="replace") as f:
        return [json.loads(ln) for ln in f if ln.strip()]


# ---- raw HTTP/2 frames -------------------------------------------------------------------

FRAME_DATA, FRAME_HEADERS, FRAME_PRIORITY, FRAME_RST_STREAM = 0, 1, 2, 3
FRAME_SETTINGS, FRAME_PUSH_PROMISE, FRAME_PING, FRAME_GOAWAY = 4, 5, 6, 7
FRAME_WINDOW_UPDATE, FRAME_CONTINUATION = 8, 9
FLAG_END_STREAM, FLAG_ACK, FLAG_END_HEADERS = 0x1, 0x1, 0x4
ERR_NAMES = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 3: "FLOW_CONTROL_ERROR",
             4: "SETTINGS_TIMEOUT", 5: "STREAM_CLOSED", 6: "FRAME_SIZE_ERROR",
             7: "REFUSED_STREAM", 8: "CANCEL", 9: "COMPRESSION_ERROR", 10: "CONNECT_ERROR",
             11: "ENHANCE_YOUR_CALM", 12: "INADEQUATE_SECURITY", 13: "HTTP_1_1_REQUIRED"}
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(ftype, flags, stream_id, payload=b""):
    """frame serialises one HTTP/2 frame (RFC 9113 §4.1)."""
    n = len(payload)
    head = struct.pack(">BHBBI", n >> 16, n & 0xFFFF, ftype, flags, stream_id & 0x7FFFFFFF)
    return head + payload


def hpack_get(authority, path="/"):
    """hpack_get is a request header block in HPACK without Huffman or dynamic table:
    :method GET, :scheme https (static indexes 2, 7), :path and :authority as literals
    without indexing (RFC 7541 §6.2.2)."""
    def lit(index, value):
        v = value.encode()
        assert len(v) < 127
        return bytes([index, len(v)]) + v
    return b"\x82\x87" + lit(4, path) + lit(1, authority)


def h2_raw_connect(m, host, port, timeout=10.0):
    """h2_raw_connect opens CONNECT + TLS (ALPN h2, verifying the mitmd CA) and returns the
    TLS socket; fails unless h2 was chosen."""
    sock, status, _, body = harness.proxy_connect(m.port, host, port, timeout)
    check(status == 200, f"CONNECT {host}:{port} answered {status}: {body!r}")
    ctx = ssl.create_default_context(cafile=m.ca_cert)
    ctx.set_alpn_protocols(["h2"])
    tls = ctx.wrap_socket(sock, server_hostname=host)
    check(tls.selected_alpn_protocol() == "h2",
          f"ALPN chose {tls.selected_alpn_protocol()!r}, expected h2")
    tls.settimeout(timeout)
    return tls


class FrameReader:
    """FrameReader parses frames from a socket: only headers, and GOAWAY payloads."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.eof = False

    def _fill(self, deadline):
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                return False
            except (ConnectionResetError, ssl.SSLError, BrokenPipeError, OSError):
                self.eof = True
                return False
            if not chunk:
                self.eof = True
                return False
            self.buf += chunk
            return True

    def next(self, timeout=5.0):
        """next returns (type, flags, stream_id, payload), or None on EOF / timeout."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 9:
                n = (self.buf[0] << 16) | (self.buf[1] << 8) | self.buf[2]
                if len(self.buf) >= 9 + n:
                    ftype, flags = self.buf[3], self.buf[4]
                    sid = struct.unpack(">I", self.buf[5:9])[0] & 0x7FFFFFFF
                    payload = self.buf[9:9 + n]
                    self.buf = self.buf[9 + n:]
                    return ftype, flags, sid, payload
            if self.eof or not self._fill(deadline):
                return None


def read_until_goaway(sock, timeout=10.0):
    """read_until_goaway reads frames until GOAWAY, EOF or timeout. Returns (goaway, frames,
    eof_after): goaway is (last_stream_id, error_code) or None; frames counts frame types
    seen; eof_after tells whether the connection was then closed (within 3 s)."""
    r = FrameReader(sock)
    counts = {}
    goaway = None
    deadline = time.monotonic() + timeout
    while goaway is None:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        f = r.next(left)
        if f is None:
            break
        counts[f[0]] = counts.get(f[0], 0) + 1
        if f[0] == FRAME_GOAWAY and len(f[3]) >= 8:
            last, code = struct.unpack(">II", f[3][:8])
            goaway = (last & 0x7FFFFFFF, code)
    eof_after = r.eof
    if goaway is not None and not eof_after:
        end = time.monotonic() + 3.0
        while not r.eof and time.monotonic() < end:
            if r.next(end - time.monotonic()) is None and not r.eof:
                break
        eof_after = r.eof
    return goaway, counts, eof_after


def send_all(sock, data):
    """send_all writes data, tolerating a peer that closed meanwhile (returns False then)."""
    try:
        sock.sendall(data)
        return True
    except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
        return False


def wait_flows(path, n, timeout=5.0):
    """wait_flows waits until the -w file holds at least n records and returns them all."""
    recs = wait_until(lambda: (lambda r: r if len(r) >= n else None)(read_flows(path)), timeout)
    if recs is None:
        recs = read_flows(path)
        raise TestFailure(f"{len(recs)} flow records in {path} after {timeout}s, expected {n}")
    return recs
