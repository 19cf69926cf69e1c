#!/usr/bin/env python3
"""--map-remote moves one request of an intercepted HTTP/1.1 keep-alive connection to another
server; the next, unmapped request on the same connection goes back to the server the client
CONNECTed to, as in mitmproxy (map_remote rewrites one request's URL, not the connection).
It used to follow the last upstream: /echo, which only the CONNECT target serves, came back
404 from the mapped server. The flow lines show the CONNECT target for the unmapped requests
and the mapped URL for the mapped one (mitmdump's request.url)."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, info, run, step, wait_until  # noqa: E402
import ruleslib  # noqa: E402


def test(env):
    body = os.urandom(1024)
    pki = env.pki()
    ngx = ruleslib.echo_nginx(env, pki, {"1k": body})
    home, other = ngx.h2_port, ngx.ports["valid"]  # only `home` serves /echo
    m = env.mitmd(args=["--upstream-ca", pki.ca_cert, "--resolve", "*.origin.test=127.0.0.1",
                        "--map-remote", f"|~u moved|:{home}/|:{other}/"])
    base = f"https://api.origin.test:{home}"
    outs = [env.path(f"out{i}") for i in range(3)]

    step("one connection: /echo, /1k?moved (mapped to the other server), /echo again")
    argv = ["curl", "-sS", "--http1.1", "-x", f"http://127.0.0.1:{m.port}", "--cacert",
            m.ca_cert, "--max-time", "20", "-w", "%{http_code} %{num_connects}\n"]
    for url, out in zip((f"{base}/echo", f"{base}/1k?moved", f"{base}/echo"), outs):
        argv += ["-o", out, url]
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    info(f"curl: {cp.stdout.split()} {cp.stderr.strip()}")
    got = [ln.split() for ln in cp.stdout.splitlines()]
    check(cp.returncode == 0 and len(got) == 3, f"curl rc {cp.returncode}: {cp.stderr}")
    check([g[1] for g in got] == ["1", "0", "0"], f"not one connection to mitmd: {got}")
    check([g[0] for g in got] == ["200", "200", "200"], f"statuses {got}")
    with open(outs[1], "rb") as f:
        check(f.read() == body, "the mapped request did not get the other server's /1k")
    with open(outs[2], "rb") as f:
        fields = ruleslib.echo_fields(f.read())
    check(fields.get("host") == "api.origin.test" and fields.get("uri") == "/echo",
          f"the request after the mapped one: {fields}")

    step("flow lines: the CONNECT target, and the mapped URL for the mapped request")
    want = [f"GET {base}/echo HTTP/1.1 << 200", f"GET https://api.origin.test:{other}/1k?moved "
            "HTTP/1.1 << 200", f"GET {base}/echo HTTP/1.1 << 200"]
    check(wait_until(lambda: len([ln for ln in m.stdout().splitlines() if "GET " in ln]) >= 3,
                     5), f"flow lines:\n{m.stdout()}")
    lines = [ln for ln in m.stdout().splitlines() if "GET " in ln]
    for w, ln in zip(want, lines):
        check(w in ln, f"want {w!r} in {ln!r}")


if __name__ == "__main__":
    run(test, __doc__)
