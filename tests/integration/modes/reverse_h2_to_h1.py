#!/usr/bin/env python3
"""--mode reverse:URL to an HTTP/1.1-only server: a TLS client that offers h2 gets HTTP/2 and
mitmd speaks HTTP/1.1 to the server (worker/h2_h1up.c), as mitmproxy does.
- reverse:http:// to lib/origin.py (HTTP/1.1 only) and to nginx's plain port, and
  reverse:https:// to nginx's HTTP/1.1-only TLS port: curl --http2 negotiates h2
  (%{http_version} = 2);
- 1 MiB both ways byte-exact by SHA-256: a download (nginx, Content-Length), an upload with
  Content-Length and one without (sent chunked to the origin, which hashes what it got);
- a chunked response and a close-delimited one arrive whole over HTTP/2;
- h2load -n 50 -c 1 -m 10 (10 concurrent streams on one connection): 50 x 2xx, all over one
  server connection (the origin's /stats counts the connections it accepted);
- an HTTP/1.0 server (plain, and https:// verified each time) that closes after every
  response: a new server connection per stream, all within one HTTP/2 client connection;
  each record shows HTTP/1.0 and the server's reason, and the connect and TLS times of the
  connection opened for that stream;
- a server that closes without answering, and one that is down: 502 with the reason (over
  HTTP/2: mitmd dials at accept, and answers a failed dial inside TLS); a response cut short: the
  stream is reset (curl fails), and the next connection still works;
- records: request HTTP/2.0, response HTTP/1.1 (the server's version), as mitmproxy shows them;
- the relay's hooks work over the bridge as over an HTTP/2 server: --modify-headers both ways,
  block_list, map_local, inject_fault reset (that stream only), inject_latency, fields the
  server's Connection names are dropped; -S answers from the recording made through the bridge
  (origin stopped) and server_replay_extra=418 for the rest."""
import hashlib
import http.server
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, free_port, info, read_records, run, step, wait_until  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ops"))
from opslib import METRICS_ARGS, metrics_port, scrape, total  # noqa: E402

UP_TLS = "mitmd_upstream_tls_handshakes_total"

LINE_RE = re.compile(r"^mitmd: reverse proxy to (\S+) listening at 127\.0\.0\.1:(\d+)\.$", re.M)
MIB = 1 << 20


def sha(b):
    return hashlib.sha256(b).hexdigest()


def chunk_bytes(i, size):
    """chunk_bytes: as lib/origin.py builds chunk i of /chunked and /stream."""
    head = f"chunk {i}\n".encode()
    return head + b"." * max(0, size - len(head))


class Closer:
    """Closer is a server that reads a request head and closes without answering."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stopped = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            c.settimeout(5)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    got = c.recv(65536)
                    if not got:
                        break
                    data += got
            except OSError:
                pass
            c.close()

    def stop(self):
        self.stopped = True
        self.sock.close()


class Http10(http.server.BaseHTTPRequestHandler):
    """Http10 answers as an HTTP/1.0 server: one response per connection, then it closes."""
    protocol_version = "HTTP/1.0"
    conns = 0

    def setup(self):
        Http10.conns += 1
        super().setup()

    def do_GET(self):
        body = f"one-shot {self.path}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


def curl(env, url, extra=(), data=None, timeout=30):
    """curl --http2 fetches url from mitmd (the server). Returns (code, version, body, rc,
    stderr)."""
    out = env.path("curl.out")
    argv = ["curl", "-sS", "--noproxy", "*", "--http2", "--max-time", str(timeout),
            "-w", "%{http_code} %{http_version}", "-o", out] + list(extra) + [url]
    cp = subprocess.run(argv, capture_output=True, timeout=timeout + 5, input=data)
    parts = cp.stdout.decode().split()
    body = open(out, "rb").read() if os.path.exists(out) else b""
    if os.path.exists(out):
        os.unlink(out)
    code = int(parts[0]) if parts and parts[0].isdigit() else 0
    return code, parts[1] if len(parts) > 1 else "", body, cp.returncode, cp.stderr.decode()


def test(env):
    big = os.urandom(MIB)
    pki = env.pki()
    ngx = env.nginx(pki, {"1m": big})
    origin = env.origin(None)
    closer = Closer()
    env.stack.callback(closer.stop)
    flows = env.path("flows.jsonl")
    one_shot = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Http10)
    threading.Thread(target=one_shot.serve_forever, daemon=True).start()
    env.stack.callback(one_shot.shutdown)
    one_shot_tls = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Http10)
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(*pki.certs["valid"])
    sctx.set_alpn_protocols(["http/1.1"])
    one_shot_tls.socket = sctx.wrap_socket(one_shot_tls.socket, server_side=True)
    threading.Thread(target=one_shot_tls.serve_forever, daemon=True).start()
    env.stack.callback(one_shot_tls.shutdown)
    specs = {
        "origin": f"reverse:http://127.0.0.1:{origin.port}",
        "nginx": f"reverse:http://127.0.0.1:{ngx.plain_port}",
        "nginx-tls": f"reverse:https://www.origin.test:{ngx.ports['valid']}",
        "closer": f"reverse:http://127.0.0.1:{closer.port}",
        "down": f"reverse:http://127.0.0.1:{free_port()}",
        "one-shot": f"reverse:http://127.0.0.1:{one_shot.server_address[1]}",
        "one-shot-tls": f"reverse:https://www.origin.test:{one_shot_tls.server_address[1]}",
    }
    args = ["--upstream-ca", pki.ca_cert, "--resolve", "*.origin.test=127.0.0.1", "-w", flows]
    args += METRICS_ARGS
    for s in specs.values():
        args += ["--mode", s + "@0"]
    m = env.mitmd(args=args, workers=1)
    found = {url: int(port) for url, port in LINE_RE.findall(m.stderr())}
    port = {k: found.get(s.split(":", 1)[1]) for k, s in specs.items()}
    check(all(port.values()), f"start-up lines name every listener: {found}")
    ca = ["--cacert", m.ca_cert]
    o_url = f"https://127.0.0.1:{port['origin']}"

    step("reverse:http:// (HTTP/1.1 origin) + curl --http2: h2 negotiated, 200")
    code, ver, body, rc, err = curl(env, o_url + "/hello", ca)
    check(code == 200 and ver == "2", f"expected 200 over HTTP/2, got {code} {ver}: {err}")
    check(body == b"hello from origin\n", f"body {body!r}")

    step("1 MiB download from nginx's plain HTTP/1.1 port over HTTP/2: SHA-256 equal")
    code, ver, body, rc, err = curl(env, f"https://127.0.0.1:{port['nginx']}/1m", ca)
    check(code == 200 and ver == "2" and sha(body) == sha(big),
          f"download: {code} {ver} {len(body)} bytes: {err}")

    step("HEAD over HTTP/2: nginx's Content-Length, no body; 204 and 304 without bodies")
    hdrs = env.path("head.txt")
    code, ver, body, rc, err = curl(env, f"https://127.0.0.1:{port['nginx']}/1m",
                                    ca + ["-I", "-D", hdrs])
    head = open(hdrs, "rb").read().lower()
    check(code == 200 and ver == "2" and rc == 0 and f"content-length: {MIB}".encode() in head,
          f"HEAD: {code} {ver} rc {rc}: {head!r} {err}")
    for status in (204, 304):
        code, ver, body, rc, err = curl(env, o_url + f"/status?code={status}", ca)
        check(code == status and ver == "2" and rc == 0 and body == b"",
              f"/status?code={status}: {code} {ver} rc {rc} {body!r} {err}")

    step("reverse:https:// to nginx's HTTP/1.1-only TLS port: h2 to the client, 1 MiB equal")
    code, ver, body, rc, err = curl(
        env, f"https://www.origin.test:{port['nginx-tls']}/1m",
        ca + ["--resolve", f"www.origin.test:{port['nginx-tls']}:127.0.0.1"])
    check(code == 200 and ver == "2" and sha(body) == sha(big),
          f"https:// server without h2: {code} {ver} {len(body)} bytes: {err}")

    step("1 MiB POST with Content-Length reaches the origin byte-exact")
    code, ver, body, rc, err = curl(env, o_url + "/sha256", ca + ["--data-binary", "@-"],
                                    data=big)
    check(code == 200 and ver == "2", f"upload: {code} {ver}: {err}")
    check(f'"sha256": "{sha(big)}"'.encode() in body and f'"length": {MIB}'.encode() in body,
          f"the origin hashed something else: {body!r}")

    step("1 MiB POST without a length (sent chunked upstream) reaches the origin byte-exact")
    code, ver, body, rc, err = curl(env, o_url + "/sha256", ca + ["-X", "POST", "-T", "-"],
                                    data=big)
    check(code == 200 and ver == "2", f"chunked upload: {code} {ver}: {err}")
    check(f'"sha256": "{sha(big)}"'.encode() in body, f"the origin hashed {body!r}")

    step("a chunked response and a close-delimited one arrive whole over HTTP/2")
    want = b"".join(chunk_bytes(i, 5000) for i in range(40))
    code, ver, body, rc, err = curl(env, o_url + "/chunked?chunks=40&size=5000&delay=0", ca)
    check(code == 200 and ver == "2" and body == want,
          f"chunked: {code} {ver} {len(body)} of {len(want)} bytes: {err}")
    code, ver, body, rc, err = curl(env, o_url + "/stream?chunks=40&size=5000&delay=0", ca)
    check(code == 200 and ver == "2" and body == want,
          f"close-delimited: {code} {ver} {len(body)} of {len(want)} bytes: {err}")

    step("h2load -n 50 -c 1 -m 10: 50 x 2xx, one HTTP/1.1 connection to the origin")
    before = len(origin.stats()["connections"])
    h2load = shutil.which("h2load")
    check(h2load is not None, "h2load (nghttp2-client) is needed")
    cp = env.run_cmd([h2load, "-n", "50", "-c", "1", "-m", "10", o_url + "/hello"], timeout=60)
    info(" ".join(ln for ln in cp.stdout.splitlines() if "status codes" in ln or "requests:" in ln))
    check(re.search(r"status codes: 50 2xx", cp.stdout) is not None,
          f"h2load: {cp.stdout[-800:]} {cp.stderr[-300:]}")
    conns = len(origin.stats()["connections"]) - 1 - before  # minus the /stats connection itself
    check(conns == 1, f"50 streams used {conns} server connections, expected 1")

    step("nghttp (offers h2 only, so ALPN h2 or nothing): 5 streams on one connection, 200")
    nghttp = shutil.which("nghttp")
    check(nghttp is not None, "nghttp (nghttp2-client) is needed")
    cp = env.run_cmd([nghttp, "-n", "-v", "-m", "5", o_url + "/hello"], timeout=30)
    statuses = re.findall(r":status: (\d+)", cp.stdout)
    check(cp.returncode == 0 and statuses == ["200"] * 5,
          f"nghttp rc {cp.returncode}, statuses {statuses}: {cp.stderr[-300:]}")

    step("an HTTP/1.0 server that closes after each response: h2load -n 20 -m 5 over one "
         "client connection, 20 x 2xx, a new server connection per stream")
    before = Http10.conns
    cp = env.run_cmd([h2load, "-n", "20", "-c", "1", "-m", "5",
                      f"https://127.0.0.1:{port['one-shot']}/x"], timeout=60)
    check(re.search(r"status codes: 20 2xx", cp.stdout) is not None,
          f"h2load to a closing server: {cp.stdout[-800:]} {cp.stderr[-300:]}")
    check(Http10.conns - before == 20, f"{Http10.conns - before} server connections for 20")
    before = Http10.conns
    mport = metrics_port(m)
    tls_before = total(scrape(mport)[0], UP_TLS)
    cp = env.run_cmd([h2load, "-n", "10", "-c", "1", "-m", "5",
                      f"https://127.0.0.1:{port['one-shot-tls']}/x"], timeout=60)
    check(re.search(r"status codes: 10 2xx", cp.stdout) is not None,
          f"h2load to a closing TLS server: {cp.stdout[-800:]} {cp.stderr[-300:]}")
    check(Http10.conns - before == 10,
          f"{Http10.conns - before} TLS server connections (verified each time) for 10")

    step("records of the HTTP/1.0 TLS server: response HTTP/1.0 with its reason, each stream "
         "with the connect and TLS times of the connection opened for it, every handshake "
         "counted")
    tls_url = f"https://www.origin.test:{one_shot_tls.server_address[1]}/x"

    def tls_records():
        return [r for r in read_records(flows) if (r.get("request") or {}).get("url") == tls_url]
    check(wait_until(lambda: len(tls_records()) >= 10, 5),
          f"{len(tls_records())} records of {tls_url}, expected 10")
    for r in tls_records():
        resp, t = r.get("response") or {}, r.get("timings") or {}
        check(resp.get("httpVersion") == "HTTP/1.0" and resp.get("status") == 200 and
              resp.get("statusText") == "OK",
              f"expected HTTP/1.0 200 OK as the server sent it: {resp}")
        connect, tls = t.get("connect"), t.get("ssl")
        check(connect is not None and connect >= 0 and tls is not None and tls > 0,
              f"a stream on its own server connection has no connect/TLS time: {t}")
    check(wait_until(lambda: total(scrape(mport)[0], UP_TLS) - tls_before >= 10, 5) and
          total(scrape(mport)[0], UP_TLS) - tls_before == 10,
          f"{UP_TLS} went up by {total(scrape(mport)[0], UP_TLS) - tls_before}, expected 10 "
          "(one handshake per server connection, the bridge's redials included)")

    def head_fields(path):
        """head_fields reads the response fields curl -D wrote (lower-cased names)."""
        with open(path, "rb") as f:
            lines = f.read().decode("latin-1").split("\r\n")
        pairs = (ln.partition(":") for ln in lines[1:])
        return {k.strip().lower(): v.strip() for k, _, v in pairs if k}

    step("a server that closes without answering: 502 with the reason, formatted as the relay's")
    hdrs = env.path("closer.h")
    code, ver, body, rc, err = curl(env, f"https://127.0.0.1:{port['closer']}/x",
                                    list(ca) + ["-D", hdrs])
    check(code == 502 and ver == "2" and b"closed" in body,
          f"expected 502 naming the close over HTTP/2, got {code} {ver}: {body!r} {err}")
    fields = head_fields(hdrs)
    check(body == b"upstream closed connection\n" and
          fields.get("content-type") == "text/plain; charset=utf-8" and
          fields.get("content-length") == str(len(body)) and
          fields.get("proxy-status", "").startswith("mitmd; error="),
          f"the bridge's 502 is not formatted as mitmd's own answers: {fields} {body!r}")

    def record(url):
        rs = [r for r in read_records(flows) if (r.get("request") or {}).get("url") == url]
        return rs[-1] if rs else None
    closer_url = f"http://127.0.0.1:{closer.port}/x"
    check(wait_until(lambda: record(closer_url) is not None, 5), "no record of the 502")
    r = record(closer_url)
    check("closed" in (r.get("error") or ""), f"the 502's record has no reason: {r}")

    step("a server that is down (connection refused): 502 with the reason, over HTTP/2")
    hdrs = env.path("down.h")
    code, ver, body, rc, err = curl(env, f"https://127.0.0.1:{port['down']}/x",
                                    list(ca) + ["-D", hdrs])
    check(code == 502 and ver == "2" and b"refused" in body,
          f"expected 502 naming the refusal over HTTP/2, got {code} {ver}: {body!r} {err}")
    check(head_fields(hdrs).get("content-type") == fields.get("content-type"),
          f"the relay's 502 and the bridge's differ in content-type: {head_fields(hdrs)}")

    step("a response cut short (Content-Length 100000, 10 bytes, close): stream reset")
    code, ver, body, rc, err = curl(env, o_url + "/truncated?announce=100000&send=10", ca)
    check(rc != 0 and len(body) < 100000, f"a cut response looked complete: rc {rc} {code}")
    cut_url = f"http://127.0.0.1:{origin.port}/truncated?announce=100000&send=10"
    check(wait_until(lambda: record(cut_url) is not None, 5), "no record of the cut response")
    check("middle of the response body" in (record(cut_url).get("error") or ""),
          f"the cut response's record: {record(cut_url)}")
    code, ver, body, rc, err = curl(env, o_url + "/hello", ca)
    check(code == 200 and ver == "2", f"the next connection: {code} {ver}: {err}")

    step("records: request HTTP/2.0, response HTTP/1.1, URL with the server's scheme")

    def hello_records():
        return [r for r in read_records(flows)
                if (r.get("request") or {}).get("url") ==
                f"http://127.0.0.1:{origin.port}/hello"]
    check(wait_until(lambda: len(hello_records()) >= 52, 5),
          f"{len(hello_records())} records of /hello, expected at least 52")
    r = hello_records()[0]
    check(r["request"].get("httpVersion") == "HTTP/2.0" and
          r["response"].get("httpVersion") == "HTTP/1.1" and r["response"]["status"] == 200,
          f"record: {r['request'].get('httpVersion')} {r['response']}")
    m.check_no_crash()
    rules_and_replay(env, origin, flows)


def rules_and_replay(env, origin, flows):
    """rules_and_replay runs a second mitmd with rules, then a third with -S, over the bridge."""
    local = env.path("local.txt")
    with open(local, "wb") as f:
        f.write(b"from map_local\n")
    os.chmod(env.tmp, 0o711)  # the workers run unprivileged: they must reach the file
    os.chmod(local, 0o644)
    rec = env.path("rec.jsonl")
    m = env.mitmd(name="rules", args=[
        "--mode", f"reverse:http://127.0.0.1:{origin.port}", "-w", rec,
        "--set", "save_bodies=64k",
        "--modify-headers", "/~q/X-Added/by-rule", "--modify-headers", "/~s/X-Resp/by-rule",
        "--set", "block_list=/~u blocked/403", "--map-local", f"|/local$|{local}",
        "--set", "inject_fault=/~u resetme/100/reset", "--set", "inject_latency=/~u slow/400ms"])
    ca = ["--cacert", m.ca_cert]
    url = f"https://127.0.0.1:{m.port}"

    step("rules over the bridge: --modify-headers both ways, Connection-named fields dropped")
    hdrs = env.path("h.txt")
    code, ver, body, rc, err = curl(env, url + "/headers?hop=1", ca + ["-D", hdrs])
    check(code == 200 and ver == "2", f"/headers: {code} {ver}: {err}")
    got = {k.lower(): v for k, v in json.loads(body)}
    check(got.get("x-added") == "by-rule", f"the origin did not get X-Added: {got}")
    head = open(hdrs, "rb").read().lower()
    check(b"x-resp: by-rule" in head, f"no X-Resp in the response: {head!r}")
    check(b"x-internal" not in head and b"keep-alive" not in head,
          f"hop-by-hop fields reached the HTTP/2 client: {head!r}")

    step("block_list 403, map_local, inject_fault reset on one stream, inject_latency")
    code, ver, body, rc, err = curl(env, url + "/blocked", ca)
    check(code == 403 and ver == "2", f"block_list: {code} {ver}")
    code, ver, body, rc, err = curl(env, url + "/local", ca)
    check(code == 200 and body == b"from map_local\n", f"map_local: {code} {body!r}")
    code, ver, body, rc, err = curl(env, url + "/resetme", ca)
    check(rc != 0 and code != 200, f"inject_fault reset: rc {rc} code {code}")
    t0 = time.monotonic()
    code, ver, body, rc, err = curl(env, url + "/hello?slow", ca)
    took = time.monotonic() - t0
    check(code == 200 and took >= 0.4, f"inject_latency: {code} after {took:.2f}s")
    m.check_no_crash()
    m.stop()

    step("-S: the recording made through the bridge answers with the origin stopped")
    origin.stop()
    r = env.mitmd(name="replay", args=[
        "--mode", f"reverse:http://127.0.0.1:{origin.port}", "-S", rec,
        "--set", "server_replay_extra=418", "--set", "server_replay_reuse=true"])
    url = f"https://127.0.0.1:{r.port}"
    code, ver, body, rc, err = curl(env, url + "/hello?slow", ["--cacert", r.ca_cert])
    check(code == 200 and ver == "2" and body == b"hello from origin\n",
          f"replayed: {code} {ver} {body!r} {err}")
    code, ver, body, rc, err = curl(env, url + "/never-recorded", ["--cacert", r.ca_cert])
    check(code == 418 and ver == "2", f"server_replay_extra: {code} {ver}")
    r.check_no_crash()


if __name__ == "__main__":
    run(test, __doc__)
