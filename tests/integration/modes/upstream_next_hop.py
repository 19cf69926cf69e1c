#!/usr/bin/env python3
"""--mode upstream:http://HOST:PORT: HTTPS goes as CONNECT through the next proxy (a small
Python forward proxy here, which records what it was asked) and is intercepted inside it: curl
gets the origin's bytes under a certificate forged by the mitmd CA, the next hop saw
"CONNECT www.origin.test:PORT" with the --upstream-auth credentials, and the exchange is
recorded. The next hop's refusal (407, 403) reaches the client as a 502 with the status in the
reason; an unreachable next hop is a 502. Plain http:// goes to the next proxy in
absolute-form, as mitmproxy sends it ("GET http://host:port/path", the --upstream-auth
credentials, no CONNECT), requests for different hosts share one connection to it, and its
answer to such a request (a 407 for wrong credentials) is the client's answer. Client replay
(-C) in upstream mode sends its requests through the next hop as well, as mitmproxy's."""
import base64
import hashlib
import json
import os
import re
import select
import socket
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (check, curl, free_port, info, read_http_response, run,  # noqa: E402
                     standard_setup, step, wait_until)


class NextHop:
    """NextHop is a threaded forward proxy on 127.0.0.1 (CONNECT, and absolute-form http://
    requests without bodies, kept alive): it resolves *.origin.test to 127.0.0.1, requires
    `auth` (USER:PASS) when set, refuses hosts in `deny` with 403, and records each request
    head it got and how many connections it accepted."""

    def __init__(self, auth=None, deny=()):
        self.auth = auth
        self.deny = set(deny)
        self.heads = []
        self.accepted = 0
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(16)
        self.port = self.srv.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _read_head(self, conn, data):
        """_read_head reads from `conn` after `data` until a request head is complete and
        returns (head text, what followed it), recording the head; None (conn closed) when
        the client closed first."""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                conn.close()
                return None
            data += chunk
        head, rest = data.split(b"\r\n\r\n", 1)
        text = head.decode("latin-1")
        self.heads.append(text)
        return text, rest

    def _serve(self, conn):
        got = self._read_head(conn, b"")
        if got is None:
            return
        text, rest = got
        line = text.split("\r\n")[0].split(" ")
        fields = {k.strip().lower(): v.strip() for k, v in
                  (ln.split(":", 1) for ln in text.split("\r\n")[1:] if ":" in ln)}
        if self.auth is not None:
            want = "Basic " + base64.b64encode(self.auth.encode()).decode()
            if fields.get("proxy-authorization") != want:
                conn.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                             b"Proxy-Authenticate: Basic realm=\"next\"\r\n"
                             b"Content-Length: 0\r\n\r\n")
                conn.close()
                return
        if line[0] != "CONNECT" and line[1].startswith("http://"):
            self._forward(conn, text, rest)
            return
        host, _, port = line[1].rpartition(":")
        if line[0] != "CONNECT" or host in self.deny:
            conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            conn.close()
            return
        addr = "127.0.0.1" if host.endswith("origin.test") else host.strip("[]")
        try:
            up = socket.create_connection((addr, int(port)), timeout=5)
        except OSError:
            conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            conn.close()
            return
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        if rest:
            up.sendall(rest)
        socks = [conn, up]
        while True:
            r, _, _ = select.select(socks, [], [], 30)
            if not r:
                break
            done = False
            for s in r:
                other = up if s is conn else conn
                try:
                    chunk = s.recv(65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    done = True
                    break
                other.sendall(chunk)
            if done:
                break
        conn.close()
        up.close()

    def _forward(self, conn, text, rest):
        """_forward serves absolute-form requests on `conn` until it closes: each goes to its
        origin in origin-form over a new connection (Connection: close), and the origin's
        response (Content-Length framed) comes back with the connection kept alive."""
        while True:
            line = text.split("\r\n")[0].split(" ")
            url = line[1][len("http://"):]
            authority, _, path = url.partition("/")
            host, _, port = authority.rpartition(":")
            fields = [ln for ln in text.split("\r\n")[1:]
                      if ln and not ln.lower().startswith(("proxy-", "connection:"))]
            addr = "127.0.0.1" if host.endswith("origin.test") else host.strip("[]")
            up = socket.create_connection((addr, int(port or 80)), timeout=5)
            up.sendall((f"{line[0]} /{path} {line[2]}\r\n" + "\r\n".join(fields) +
                        "\r\nConnection: close\r\n\r\n").encode("latin-1"))
            resp = b""
            while True:
                chunk = up.recv(65536)
                if not chunk:
                    break
                resp += chunk
            up.close()
            head, _, body = resp.partition(b"\r\n\r\n")
            head = b"\r\n".join(ln for ln in head.split(b"\r\n")
                                 if not ln.lower().startswith(b"connection:"))
            conn.sendall(head + b"\r\n\r\n" + body)
            got = self._read_head(conn, rest)
            if got is None:
                return
            text, rest = got

    def stop(self):
        self.srv.close()


def sha(b):
    return hashlib.sha256(b).hexdigest()


def raw_connect(mport, target):
    """raw_connect sends CONNECT target to mitmd; returns (status, body)."""
    s = socket.create_connection(("127.0.0.1", mport), timeout=10)
    s.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    code, _, body = read_http_response(s)
    s.close()
    return code, body


def test(env):
    body = os.urandom(64 * 1024)
    hop = NextHop(auth="alice:s3cret", deny={"denied.origin.test"})
    w = standard_setup(env, files={"64k": body}, origin=False, flows=True,
                       extra_args=["--mode", f"upstream:http://127.0.0.1:{hop.port}",
                                   "--upstream-auth", "alice:s3cret"])
    port = w.nginx.ports["valid"]

    step("curl -x mitmd https://www.origin.test/64k -> 200 through the next hop, intercepted")
    code, got, err = curl(env, w.mitmd.port, f"https://www.origin.test:{port}/64k",
                          cafile=w.mitmd.ca_cert)
    check(code == 200 and sha(got) == sha(body), f"curl got {code}: {err.strip()}")
    heads = [h for h in hop.heads if h.startswith(f"CONNECT www.origin.test:{port} ")]
    check(heads, f"the next hop saw no CONNECT www.origin.test:{port}: {hop.heads}")
    check("Proxy-Authorization: Basic " + base64.b64encode(b"alice:s3cret").decode() in heads[0],
          f"no --upstream-auth credentials in {heads[0]!r}")
    info(f"next hop got: {heads[0].splitlines()[0]!r}")

    step("a client trusting only the origin CA refuses the certificate (it is mitmd's)")
    code, _, err = curl(env, w.mitmd.port, f"https://www.origin.test:{port}/64k",
                        cafile=w.pki.ca_cert)
    check(code == 0 and ("certificate" in err.lower() or "SSL" in err),
          f"curl trusting the origin CA got {code}: {err.strip()}")

    step("the exchange is recorded with the origin's URL")
    pat = re.compile(r"GET https://www\.origin\.test:%d/64k HTTP/1\.1 << 200" % port)
    check(wait_until(lambda: pat.search(w.mitmd.stdout()), 5),
          f"no flow line:\n{w.mitmd.stdout()}")

    step("the next hop refuses (403): 502 whose reason carries its status")
    code, text = raw_connect(w.mitmd.port, f"denied.origin.test:{port}")
    info(f"{code} {text[:160]!r}")
    check(code == 502 and b"403 Forbidden" in text, f"refused CONNECT: {code} {text!r}")

    step("plain http:// goes to the next proxy in absolute-form with --upstream-auth, no CONNECT")
    pport = w.nginx.plain_port
    code, got, err = curl(env, w.mitmd.port, f"http://www.origin.test:{pport}/64k?a=1")
    check(code == 200 and sha(got) == sha(body), f"plain http: {code} {got[:120]!r}")
    gets = [h for h in hop.heads if h.startswith(f"GET http://www.origin.test:{pport}/64k?a=1 ")]
    check(len(gets) == 1, f"the next hop saw no absolute-form GET: {hop.heads}")
    check("Proxy-Authorization: Basic " + base64.b64encode(b"alice:s3cret").decode() in gets[0]
          and f"Host: www.origin.test:{pport}" in gets[0], f"head at the next hop: {gets[0]!r}")
    check(not any(h.startswith(f"CONNECT www.origin.test:{pport} ") for h in hop.heads),
          f"a CONNECT for the plain port: {hop.heads}")
    pat = re.compile(r"GET http://www\.origin\.test:%d/64k\?a=1 HTTP/1\.1 << 200" % pport)
    check(wait_until(lambda: pat.search(w.mitmd.stdout()), 5),
          f"no flow line with the origin's URL:\n{w.mitmd.stdout()}")

    step("two plain requests for two hosts on one client connection: one connection to the "
         "next proxy carries both")
    before = hop.accepted
    cp = subprocess.run(["curl", "-sS", "-x", f"http://127.0.0.1:{w.mitmd.port}",
                         "-o", "/dev/null", "-o", "/dev/null", "-w", "%{http_code} ",
                         f"http://www.origin.test:{pport}/64k?b=1",
                         f"http://api.origin.test:{pport}/64k?b=2"],
                        capture_output=True, timeout=30)
    info(f"curl: {cp.stdout!r} {cp.stderr[-200:]!r}; next hop accepted "
         f"{hop.accepted - before} connection(s)")
    check(cp.returncode == 0 and cp.stdout.split() == [b"200", b"200"],
          f"two hosts: {cp.returncode} {cp.stdout!r} {cp.stderr!r}")
    check(any(h.startswith(f"GET http://api.origin.test:{pport}/64k?b=2 ") for h in hop.heads),
          f"no absolute-form GET for api.origin.test: {hop.heads[-2:]}")
    check(hop.accepted - before == 1, f"{hop.accepted - before} connections to the next hop")

    step("wrong --upstream-auth: the next hop's 407 reaches the client as 502 with '407'")
    m2 = env.mitmd(args=["--upstream-ca", w.pki.ca_cert, "--mode",
                         f"upstream:http://127.0.0.1:{hop.port}", "--upstream-auth", "alice:wrong"],
                   name="badauth")
    code, text = raw_connect(m2.port, f"www.origin.test:{port}")
    check(code == 502 and b"407 Proxy Authentication Required" in text,
          f"wrong credentials: {code} {text!r}")
    code, got, err = curl(env, m2.port, f"http://www.origin.test:{w.nginx.plain_port}/64k")
    check(code == 407, f"plain http with wrong credentials: {code}, want the next hop's 407")

    step("an unreachable next hop: 502 naming it")
    dead = free_port()
    m3 = env.mitmd(args=["--mode", f"upstream:http://127.0.0.1:{dead}"], name="deadhop")
    code, text = raw_connect(m3.port, f"www.origin.test:{port}")
    check(code == 502 and f"127.0.0.1:{dead}".encode() in text and b"refused" in text,
          f"unreachable next hop: {code} {text!r}")

    recs = []
    with open(w.flows) as f:
        recs = [json.loads(ln) for ln in f if ln.strip()]
    check(any("403 Forbidden" in (r.get("error") or "") for r in recs),
          f"the refusal is not recorded: {[r.get('error') for r in recs]}")

    step("-C in upstream mode: the replayed HTTPS request goes through the next hop too")
    rec = env.path("one.jsonl")
    with open(rec, "w") as f:
        f.write(json.dumps({"request": {"method": "GET", "url": f"https://www.origin.test:{port}"
                                        "/64k?replayed=1", "headers": [], "bodySize": 0}}) + "\n")
    before = len(hop.heads)
    cp = env.run_cmd([env.mitmd_bin, "--confdir", env.path("replay-conf"), "-p", "0",
                      "--upstream-ca", w.pki.ca_cert, "--mode",
                      f"upstream:http://127.0.0.1:{hop.port}", "--upstream-auth", "alice:s3cret",
                      "-C", rec], timeout=30)
    info(cp.stdout.strip())
    check(cp.returncode == 0 and cp.stdout.startswith(
          f"[replay]: GET https://www.origin.test:{port}/64k?replayed=1 HTTP/1.1 << 200 OK 64.0k"),
          f"exit {cp.returncode}: {cp.stdout!r} {cp.stderr[-600:]}")
    check(any(h.startswith(f"CONNECT www.origin.test:{port} ") for h in hop.heads[before:]),
          f"the next hop saw no CONNECT for the replay: {hop.heads[before:]}")
    hop.stop()


if __name__ == "__main__":
    run(test, __doc__)
