#!/usr/bin/env python3
"""--mode reverse:URL when the client's scheme differs from the server's, as mitmproxy does
(next_layer: a client TLS layer whenever the client's first bytes are TLS, a server TLS layer
whenever the URL is https://). One mitmd, four reverse listeners:
- reverse:http:// with TLS clients: curl by address (no SNI) and by name (SNI) verify a
  certificate from the mitmd CA (without SNI it names the address mitmd was reached at, also
  when the server is a name); the origin sees plain HTTP (its /conn says tls false) with
  the server's Host; curl --http2 gets HTTP/2 (ALPN h2; mitmd speaks HTTP/1.1 to the server,
  worker/h2_h1up.c) and the bytes of a 64 KiB file.
- reverse:https:// with plain clients: the origin sees TLS with the server's name as SNI and
  Host; nginx's 64 KiB file arrives whole; two requests share one connection.
- reverse:https:// to a server whose certificate is for another name: a plain client gets a
  502 whose body says why (verification as for every upstream).
- records carry the server's scheme in the URL (mitmproxy's request.scheme)."""
import hashlib
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, info, read_records, run, step, wait_until  # noqa: E402

LINE_RE = re.compile(r"^mitmd: reverse proxy to (\S+) listening at 127\.0\.0\.1:(\d+)\.$", re.M)


def sha(b):
    return hashlib.sha256(b).hexdigest()


def curl(env, urls, extra=(), timeout=20):
    """curl fetches urls with no proxy (mitmd is the server). Returns
    (codes, bodies, http_versions, stderr); each body is the bytes of one URL."""
    outs = [env.path(f"curl{i}.out") for i in range(len(urls))]
    argv = ["curl", "-sS", "--noproxy", "*", "--max-time", str(timeout),
            "-w", "%{http_code} %{http_version}\n"] + list(extra)
    for u, o in zip(urls, outs):
        argv += ["-o", o, u]
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 5)
    codes, versions, bodies = [], [], []
    for ln in cp.stdout.splitlines():
        parts = ln.split()
        codes.append(int(parts[0]) if parts and parts[0].isdigit() else 0)
        versions.append(parts[1] if len(parts) > 1 else "")
    for o in outs:
        bodies.append(open(o, "rb").read() if os.path.exists(o) else b"")
        if os.path.exists(o):
            os.unlink(o)
    return codes, bodies, versions, cp.stderr


def test(env):
    body = os.urandom(64 * 1024)
    pki = env.pki()
    ngx = env.nginx(pki, {"64k": body})
    tls_origin = env.origin(pki)
    plain_origin = env.origin(None)
    flows = env.path("flows.jsonl")
    specs = {
        "plain-origin": f"reverse:http://127.0.0.1:{plain_origin.port}",
        "tls-origin": f"reverse:https://www.origin.test:{tls_origin.port}",
        "plain-nginx": f"reverse:http://127.0.0.1:{ngx.plain_port}",
        "h2-nginx": f"reverse:https://www.origin.test:{ngx.h2_port}",
        "wrong-name": f"reverse:https://127.0.0.1:{ngx.ports['wronghost']}",
        "by-name": f"reverse:http://localhost:{plain_origin.port}",
    }
    args = ["--upstream-ca", pki.ca_cert, "--resolve", "*.origin.test=127.0.0.1", "-w", flows]
    for s in specs.values():
        args += ["--mode", s + "@0"]
    m = env.mitmd(args=args, workers=2)
    found = {url: int(port) for url, port in LINE_RE.findall(m.stderr())}
    port = {k: found.get(s.split(":", 1)[1]) for k, s in specs.items()}
    check(all(port.values()), f"start-up lines name every listener: {found}")
    info(f"listeners: {port}")
    ca = ["--cacert", m.ca_cert]

    step("reverse:http:// + TLS client by address (no SNI): 200, origin saw plain HTTP")
    codes, bodies, vers, err = curl(env, [f"https://127.0.0.1:{port['plain-origin']}/conn"], ca)
    check(codes == [200], f"curl https to reverse:http:// got {codes}: {err.strip()}")
    seen = json.loads(bodies[0])
    check(seen["tls"] is False, f"the origin saw TLS: {seen}")
    check(seen["host"] == f"127.0.0.1:{plain_origin.port}", f"Host at the origin: {seen}")

    step("reverse:http:// + TLS client by name (SNI): the forged certificate names it")
    codes, bodies, vers, err = curl(
        env, [f"https://api.example.test:{port['plain-origin']}/conn"],
        ca + ["--resolve", f"api.example.test:{port['plain-origin']}:127.0.0.1"])
    check(codes == [200] and json.loads(bodies[0])["tls"] is False,
          f"curl by name got {codes}: {err.strip()} {bodies[0][:200]!r}")

    step("reverse:http://localhost + TLS client by address (no SNI): the certificate also "
         "names the address the client connected to (mitmproxy: client.sockname)")
    codes, bodies, vers, err = curl(env, [f"https://127.0.0.1:{port['by-name']}/conn"], ca)
    check(codes == [200] and json.loads(bodies[0])["tls"] is False,
          f"curl by address to a server named localhost got {codes}: {err.strip()}")

    step("reverse:http:// + curl --http2 over TLS: ALPN gives h2 (bridged to the HTTP/1.1 "
         "server), 64 KiB SHA-256 equal")
    codes, bodies, vers, err = curl(env, [f"https://127.0.0.1:{port['plain-nginx']}/64k"],
                                    ca + ["--http2"])
    check(codes == [200] and sha(bodies[0]) == sha(body),
          f"curl --http2 got {codes} ({len(bodies[0])} bytes): {err.strip()}")
    check(vers == ["2"], f"expected HTTP/2 by ALPN (bridged to the plain server), got {vers}")

    step("reverse:https:// + plain client: 200, origin saw TLS with the server's SNI and Host")
    codes, bodies, vers, err = curl(env, [f"http://127.0.0.1:{port['tls-origin']}/conn"] * 2)
    check(codes == [200, 200], f"plain curl to reverse:https:// got {codes}: {err.strip()}")
    a, b = (json.loads(x) for x in bodies)
    check(a["tls"] is True and a["sni"] == "www.origin.test", f"origin saw {a}")
    check(a["host"] == f"www.origin.test:{tls_origin.port}", f"Host at the origin: {a}")
    check(a["conn_id"] == b["conn_id"], f"two requests, two server connections: {a} {b}")

    step("reverse:https:// (nginx, h2 offered) + plain client: 64 KiB SHA-256 equal")
    codes, bodies, vers, err = curl(env, [f"http://127.0.0.1:{port['h2-nginx']}/64k"])
    check(codes == [200] and sha(bodies[0]) == sha(body),
          f"plain curl to nginx over TLS got {codes} ({len(bodies[0])} bytes): {err.strip()}")

    step("reverse:https:// to a certificate for another name + plain client: 502 with why")
    codes, bodies, vers, err = curl(env, [f"http://127.0.0.1:{port['wrong-name']}/64k"])
    check(codes == [502] and b"certificate" in bodies[0].lower(),
          f"expected 502 naming the certificate, got {codes}: {bodies[0][:300]!r}")

    step("records: the URL has the server's scheme whatever the client spoke")
    want = {f"http://127.0.0.1:{plain_origin.port}/conn",
            f"https://www.origin.test:{tls_origin.port}/conn",
            f"http://127.0.0.1:{ngx.plain_port}/64k",
            f"https://www.origin.test:{ngx.h2_port}/64k"}

    def urls():
        return {(r.get("request") or {}).get("url") for r in read_records(flows)
                if (r.get("response") or {}).get("status") == 200}
    check(wait_until(lambda: want <= urls(), 5), f"records {urls()} lack {want - urls()}")
    m.check_no_crash()


if __name__ == "__main__":
    run(test, __doc__)
