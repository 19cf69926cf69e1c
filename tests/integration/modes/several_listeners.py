#!/usr/bin/env python3
"""One mitmd, three listeners (`--mode regular@0 --mode socks5@0 --mode
reverse:https://127.0.0.1:ORIGIN@0`, two workers): the start-up lines name each listener with
its mode and port; curl -x, curl --socks5-hostname and curl to the reverse port, run at once,
each get 200 with the origin's bytes (SHA-256) through a certificate issued by the mitmd CA;
every -w record and flow line names the listener it came in on (proxy_mode); and both workers
serve each listener (keep-alive connections held open, counted per worker from /proc); after
SIGHUP the new workers serve all three."""
import hashlib
import os
import re
import signal
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (cert_issuer_subject, cert_text, check, https_via_proxy, info,  # noqa: E402
                     pem_blocks, read_http_response, read_records, run, step, tls_over,
                     wait_until)
from socks5lib import socks5_connect  # noqa: E402
import socket  # noqa: E402

LINE_RE = re.compile(r"^mitmd: (.+) listening at (.+)\.$", re.M)


def sha(b):
    return hashlib.sha256(b).hexdigest()


def listeners(stderr):
    """listeners maps each start-up line's description to its port: {desc: port}."""
    out = {}
    for desc, where in LINE_RE.findall(stderr):
        ports = {int(a.rsplit(":", 1)[1]) for a in where.split(" and ")}
        check(len(ports) == 1, f"{desc}: several ports in one listener line: {where}")
        out[desc] = ports.pop()
    return out


def curl_run(env, argv, results, key):
    """curl_run runs curl (argv without output options); stores (code, body, chain, err)."""
    out = env.path(f"curl-{key}.out")
    cp = subprocess.run(["curl", "-sS", "-o", out, "-w", "%{http_code}\n%{certs}",
                         "--max-time", "30"] + argv, capture_output=True, text=True, timeout=40)
    body = b""
    if os.path.exists(out):
        with open(out, "rb") as f:
            body = f.read()
    lines = cp.stdout.split("\n", 1)
    code = int(lines[0]) if lines[0].strip().isdigit() else 0
    results[key] = (code, body, pem_blocks(lines[1] if len(lines) > 1 else ""), cp.stderr)


def established_by_pid(pids, port):
    """established_by_pid counts, per pid, the ESTABLISHED TCP sockets whose local port is
    `port` (from /proc/net/tcp{,6} and /proc/PID/fd)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[3] == "01" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(parts[9])
        except OSError:
            pass
    out = {}
    for pid in pids:
        n = 0
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:[") and link[8:-1] in inodes:
                n += 1
        out[pid] = n
    return out


def test(env):
    body = os.urandom(1 << 20)
    pki = env.pki()
    origin = env.nginx(pki, {"1m": body, "1k": body[:1024]}).ports["valid"]
    flows = env.path("flows.jsonl")
    specs = ["regular@0", "socks5@0", f"reverse:https://127.0.0.1:{origin}@0"]
    args = ["--upstream-ca", pki.ca_cert, "--resolve", "*.origin.test=127.0.0.1", "-w", flows]
    for s in specs:
        args += ["--mode", s]

    step("mitmd --workers 2 with three --mode listeners prints one line per listener")
    m = env.mitmd(args=args, workers=2, name="three")
    got = listeners(m.stderr())
    info(f"listeners: {got}")
    want = ["HTTP(S) proxy", "SOCKS v5 proxy", f"reverse proxy to https://127.0.0.1:{origin}"]
    check(sorted(got) == sorted(want), f"start-up lines name {sorted(got)}, expected {want}")
    p_reg, p_socks, p_rev = (got[d] for d in want)
    check(len({p_reg, p_socks, p_rev}) == 3 and 0 not in (p_reg, p_socks, p_rev),
          f"ports {p_reg} {p_socks} {p_rev}")
    check(m.port == p_reg, f"'listening on' names port {m.port}, the first listener is {p_reg}")
    _, ca_subject = cert_issuer_subject(cert_text(open(m.ca_cert).read()))

    step("curl -x, curl --socks5-hostname and curl to the reverse port at once: 200, SHA-256, "
         "forged by the mitmd CA")
    url = f"https://www.origin.test:{origin}/1m"
    runs = {
        "regular": ["-x", f"http://127.0.0.1:{p_reg}", "--cacert", m.ca_cert, url],
        "socks5": ["--socks5-hostname", f"127.0.0.1:{p_socks}", "--cacert", m.ca_cert, url],
        "reverse": ["--noproxy", "*", "--cacert", m.ca_cert, f"https://127.0.0.1:{p_rev}/1m"],
    }
    for rnd in range(2):
        results = {}
        threads = [threading.Thread(target=curl_run, args=(env, a, results, f"{k}{rnd}"))
                   for k, a in runs.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for k in runs:
            code, got_body, chain, err = results.get(f"{k}{rnd}", (0, b"", [], "no result"))
            check(code == 200, f"{k}: HTTP {code}: {err.strip()}")
            check(sha(got_body) == sha(body), f"{k}: body SHA-256 differs ({len(got_body)} bytes)")
            check(chain, f"{k}: curl printed no certificate")
            issuer, subject = cert_issuer_subject(cert_text(chain[0]))
            check(issuer == ca_subject, f"{k}: leaf issuer {issuer!r} is not the mitmd CA "
                  f"{ca_subject!r}")
        info(f"round {rnd}: 3 x 1 MiB intact, leaves issued by {ca_subject}")

    step("each -w record and flow line names the listener the exchange came in on")
    recs = wait_until(lambda: (lambda r: r if len(r) >= 6 else None)(read_records(flows)), 10)
    check(recs, f"{len(read_records(flows))} records, expected 6")
    by_mode = {}
    for r in recs:
        by_mode.setdefault(r["client"].get("proxy_mode"), []).append(r)
    check(sorted(by_mode) == sorted(specs), f"records' proxy_mode: {sorted(by_mode)}")
    for s in specs:
        check(len(by_mode[s]) == 2 and all(r["response"]["status"] == 200 for r in by_mode[s]),
              f"{s}: {[r['response'] for r in by_mode[s]]}")
    out = m.stdout()
    for s in specs:
        check(f"[{s}]: GET" in out, f"no flow line tagged [{s}]: {out[-600:]!r}")

    step("both workers serve each listener: 6 keep-alive connections per listener, held open")
    held = []

    def via_regular():
        c = https_via_proxy(p_reg, "www.origin.test", origin, m.ca_cert)
        c.request("GET", "/1k")
        r = c.getresponse()
        check(r.status == 200 and r.read() == body[:1024], f"regular: {r.status}")
        held.append(c)

    def via_socks():
        sock, method, rep = socks5_connect(p_socks, "www.origin.test", origin)
        check(rep == 0, f"socks5: method {method!r} reply {rep}")
        t = tls_over(sock, "www.origin.test", m.ca_cert)
        t.sendall(b"GET /1k HTTP/1.1\r\nHost: www.origin.test\r\n\r\n")
        code, _, data = read_http_response(t)
        check(code == 200 and data == body[:1024], f"socks5: {code}")
        held.append(t)

    def via_reverse():
        sock = socket.create_connection(("127.0.0.1", p_rev), timeout=10)
        t = tls_over(sock, "www.origin.test", m.ca_cert)
        t.sendall(b"GET /1k HTTP/1.1\r\nHost: www.origin.test\r\n\r\n")
        code, _, data = read_http_response(t)
        check(code == 200 and data == body[:1024], f"reverse: {code}")
        held.append(t)

    try:
        for fn in (via_regular, via_socks, via_reverse):
            for _ in range(6):
                fn()
        pids = m.worker_pids()
        check(len(pids) == 2, f"workers: {pids}")
        for name, port in (("regular", p_reg), ("socks5", p_socks), ("reverse", p_rev)):
            counts = established_by_pid(pids, port)
            info(f"{name} listener {port}: connections per worker {counts}")
            check(sum(counts.values()) == 6, f"{name}: {counts}, expected 6 in all")
            check(all(n > 0 for n in counts.values()),
                  f"{name}: a worker serves none of its connections: {counts}")
    finally:
        for c in held:
            c.close()

    step("after SIGHUP the new workers serve every listener (the sockets are kept)")
    old = m.worker_pids()
    os.kill(m.pid, signal.SIGHUP)
    new = m.wait_workers(2, timeout=10, exclude=old)
    check(new is not None, f"workers after SIGHUP: {m.worker_pids()} (old {old})")
    results = {}
    for k, a in runs.items():
        curl_run(env, a, results, f"{k}-hup")
        code, got_body, _, err = results[f"{k}-hup"]
        check(code == 200 and sha(got_body) == sha(body),
              f"{k} after SIGHUP: HTTP {code}, {len(got_body)} bytes: {err.strip()}")


if __name__ == "__main__":
    run(test, __doc__)
