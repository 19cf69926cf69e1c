#!/usr/bin/env python3
"""`--listen-host localhost` listens on every address localhost resolves to, one socket per
address, as mitmproxy does (issue 15 item 8): where localhost is both 127.0.0.1 and ::1, one
mitmd (two workers) answers curl -x on http://127.0.0.1:P and on http://[::1]:P (HTTPS
intercepted, the origin's bytes), its start-up line names both addresses, and a second mode
with its own @localhost:0 gets both too. This machine's /etc/hosts may say localhost is
127.0.0.1 only: then mitmd runs in a private mount namespace (unshare -m, root) whose
/etc/hosts also maps localhost to ::1."""
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (_pdeathsig, check, curl, info, run, step, stop_popen, tail,  # noqa: E402
                     wait_until)
from socks5lib import curl_socks  # noqa: E402

LINE_RE = re.compile(r"^mitmd: (.+) listening at (.+)\.$", re.M)


def has_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def test(env):
    if not has_ipv6_loopback():
        info("no ::1 on this machine: nothing to check")
        return
    addrs = {ai[4][0] for ai in socket.getaddrinfo("localhost", 0, type=socket.SOCK_STREAM)}
    info(f"localhost resolves to {sorted(addrs)} here")
    wrap = []
    if addrs != {"127.0.0.1", "::1"}:
        if os.geteuid() != 0 or shutil.which("unshare") is None:
            info("localhost is not 127.0.0.1 and ::1 here and no mount namespace: skipped")
            return
        hosts = env.path("hosts")
        with open(hosts, "w") as f:
            f.write("127.0.0.1 localhost\n::1 localhost\n")
        wrap = ["unshare", "-m", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"', hosts]
    body = os.urandom(256 * 1024)
    pki = env.pki()
    ngx = env.nginx(pki, {"256k": body})

    step("mitmd --listen-host localhost -p 0 --mode regular --mode socks5@localhost:0")
    err_path = env.path("mitmd.stderr")
    env.add_log("mitmd stderr", err_path)
    argv = wrap + [env.mitmd_bin, "--confdir", env.path("conf"), "--workers", "2",
                   "--listen-host", "localhost", "-p", "0", "--upstream-ca", pki.ca_cert,
                   "--resolve", "*.origin.test=127.0.0.1", "--mode", "regular", "--mode",
                   "socks5@localhost:0"]
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err,
                                stdin=subprocess.DEVNULL, preexec_fn=_pdeathsig)
    try:
        ok = wait_until(lambda: "listening on" in open(err_path).read() or
                        proc.poll() is not None, 15)
        text = open(err_path).read()
        check(ok and proc.poll() is None, f"mitmd did not start: {tail(err_path)}")
        found = dict(LINE_RE.findall(text))
        info(f"start-up lines: {found}")
        ports = {}
        for desc in ("HTTP(S) proxy", "SOCKS v5 proxy"):
            where = found.get(desc, "")
            m4 = re.fullmatch(r"127\.0\.0\.1:(\d+) and \[::1\]:(\d+)", where)
            check(m4 is not None and m4.group(1) == m4.group(2),
                  f"{desc}: listening at {where!r}, expected 127.0.0.1:P and [::1]:P")
            ports[desc] = int(m4.group(1))

        url = f"https://www.origin.test:{ngx.ports['valid']}/256k"
        want = hashlib.sha256(body).hexdigest()
        ca = env.path("conf", "mitmd-ca-cert.pem")
        for host in ("127.0.0.1", "[::1]"):
            step(f"curl -x http://{host}:P {url} -> 200, same SHA-256")
            p = ports["HTTP(S) proxy"]
            code, got, cerr = curl(env, p, url, cafile=ca, extra=["-x", f"http://{host}:{p}"])
            check(code == 200 and hashlib.sha256(got).hexdigest() == want,
                  f"via {host}: HTTP {code}, {len(got)} bytes: {cerr.strip()}")
            step(f"curl --socks5-hostname {host}:P2 -> 200, same SHA-256")
            p = ports["SOCKS v5 proxy"]
            code, got, cerr = curl_socks(env, p, url, cafile=ca,
                                         extra=["--socks5-hostname", f"{host}:{p}"])
            check(code == 200 and hashlib.sha256(got).hexdigest() == want,
                  f"socks5 via {host}: HTTP {code}, {len(got)} bytes: {cerr.strip()}")
    finally:
        stop_popen(proc)
    check(proc.returncode == 0, f"mitmd exited {proc.returncode} on SIGTERM: {tail(err_path)}")
    check("AddressSanitizer" not in open(err_path).read(), "sanitizer report")


if __name__ == "__main__":
    run(test, __doc__)
