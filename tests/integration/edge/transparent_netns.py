#!/usr/bin/env python3
"""--mode transparent on a gateway: three network namespaces made by the test (client ->
router -> origin, veth pairs, IPv4 and IPv6); the router runs mitmd and an nftables (or
iptables) REDIRECT of the client's TCP ports 80 and 443 to mitmd; it does not forward, so a
connection reaches the origin only through mitmd. From the client namespace: curl https to
www.origin.test (resolved by the client to the origin's IPv4, then IPv6 address) trusting only
the mitmd CA gets the origin's answer, which says the origin was reached from the router at
the original destination (SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST) and port; plain HTTP to the
origin's address is relayed too; the flow lines and -w records name the client, the SNI and
the original destination. A client connecting to mitmd's port directly (not redirected) and a
redirected connection to an address where nothing listens are closed and recorded with the
reason. Namespaces are deleted at the end, also on failure. Skipped (77) when not root or
without ip and nft/iptables."""
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (Mitmd, Nginx, TestFailure, _pdeathsig, check, info, run,  # noqa: E402
                     step, stop_popen, wait_until)
from pplib import read_records  # noqa: E402

IP = shutil.which("ip")
NFT = shutil.which("nft")
IPT, IP6T = shutil.which("iptables"), shutil.which("ip6tables")

C4, R4C, R4O, O4, O4_DEAD = "10.199.1.2", "10.199.1.1", "10.199.2.1", "10.199.2.2", "10.199.2.3"
C6, R6C, R6O, O6 = "fd00:199:1::2", "fd00:199:1::1", "fd00:199:2::1", "fd00:199:2::2"


def sh(argv, timeout=15, check_rc=True, input=None):
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=input)
    if check_rc and cp.returncode != 0:
        raise TestFailure(f"{' '.join(argv)} exited {cp.returncode}: {cp.stderr.strip()}")
    return cp


class Netns:
    """Netns is the test's three namespaces; delete() removes them (and their veths)."""

    def __init__(self, env):
        tag = secrets.token_hex(3)
        self.client, self.router, self.origin = (f"mt{k}{tag}" for k in "cro")
        self.made = []
        env.stack.callback(self.delete)  # registered first: runs after every process stopped
        for ns in (self.client, self.router, self.origin):
            sh([IP, "netns", "add", ns])
            self.made.append(ns)
            self.run(ns, [IP, "link", "set", "lo", "up"])
        self.veth(self.client, f"c{tag}", C4, C6, self.router, f"rc{tag}", R4C, R6C)
        self.veth(self.router, f"ro{tag}", R4O, R6O, self.origin, f"o{tag}", O4, O6)
        self.run(self.origin, [IP, "addr", "add", f"{O4_DEAD}/24", "dev", f"o{tag}"])
        self.run(self.client, [IP, "route", "add", "default", "via", R4C])
        self.run(self.client, [IP, "-6", "route", "add", "default", "via", R6C])
        self.client_if = f"rc{tag}"  # the router's side facing the client

    def run(self, ns, argv, **kw):
        return sh([IP, "netns", "exec", ns] + argv, **kw)

    def veth(self, ns_a, if_a, a4, a6, ns_b, if_b, b4, b6):
        sh([IP, "link", "add", if_a, "netns", ns_a, "type", "veth", "peer", "name", if_b,
            "netns", ns_b])
        for ns, ifn, a4_, a6_ in ((ns_a, if_a, a4, a6), (ns_b, if_b, b4, b6)):
            self.run(ns, [IP, "addr", "add", f"{a4_}/24", "dev", ifn])
            self.run(ns, [IP, "-6", "addr", "add", f"{a6_}/64", "dev", ifn, "nodad"])
            self.run(ns, [IP, "link", "set", ifn, "up"])

    def redirect(self, port):
        """redirect sends the client's TCP 80/443 arriving at the router to mitmd's port."""
        if NFT:
            rules = ("table inet mitmd_test {\n chain pre {\n"
                     "  type nat hook prerouting priority dstnat; policy accept;\n"
                     f'  iifname "{self.client_if}" tcp dport {{ 80, 443 }} redirect to :{port}\n'
                     " }\n}\n")
            self.run(self.router, [NFT, "-f", "-"], input=rules)
            return "nftables"
        for tool in (IPT, IP6T):
            self.run(self.router, [tool, "-t", "nat", "-A", "PREROUTING", "-i", self.client_if,
                                   "-p", "tcp", "-m", "multiport", "--dports", "80,443",
                                   "-j", "REDIRECT", "--to-ports", str(port)])
        return "iptables"

    def delete(self):
        for ns in self.made:
            subprocess.run([IP, "netns", "del", ns], capture_output=True)
        self.made = []


class NsMitmd(Mitmd):
    """NsMitmd is the harness's Mitmd run inside a namespace (`ip netns exec` execs mitmd
    itself, so the PID stopped is mitmd's)."""

    def __init__(self, env, ns, **kw):
        super().__init__(env, **kw)
        self.ns = ns

    @property
    def argv(self):
        return [IP, "netns", "exec", self.ns] + super().argv


class NsNginx(Nginx):
    """NsNginx serves /whoami ("<client addr> <server addr>:<port>") over TLS on 443 and plain
    on 80 at the origin namespace's addresses."""

    def __init__(self, env, pki, ns):
        super().__init__(env, pki, {"1k": b"x" * 1024})
        self.ns = ns

    def _conf(self):
        p, crt, key = self.prefix, *self.pki.certs["valid"]
        who = 'location = /whoami { default_type text/plain; ' \
              'return 200 "$remote_addr $server_addr:$server_port\\n"; }'
        return "\n".join([
            "daemon off;", "master_process off;", f"pid {p}/nginx.pid;",
            f"error_log {p}/error.log warn;", "events { worker_connections 64; }",
            "http {", f"access_log {p}/access.log;", f"client_body_temp_path {p}/cb;",
            f"proxy_temp_path {p}/px;", f"fastcgi_temp_path {p}/fc;", f"uwsgi_temp_path {p}/uw;",
            f"scgi_temp_path {p}/sc;",
            f"server {{ listen {O4}:443 ssl; listen [{O6}]:443 ssl; ssl_certificate {crt}; "
            f"ssl_certificate_key {key}; root {self.root}; {who} }}",
            f"server {{ listen {O4}:80; listen [{O6}]:80; root {self.root}; {who} }}",
            "}", ""])

    def start(self):
        conf = os.path.join(self.prefix, "nginx.conf")
        with open(conf, "w") as f:
            f.write(self._conf())
        log = os.path.join(self.prefix, "stderr.log")
        self.env.add_log("nginx error.log", os.path.join(self.prefix, "error.log"))
        with open(log, "ab") as err:
            self.proc = subprocess.Popen([IP, "netns", "exec", self.ns, self.BINARY, "-p",
                                          self.prefix, "-c", conf], stdout=err, stderr=err,
                                         stdin=subprocess.DEVNULL, preexec_fn=_pdeathsig)

    def stop(self):
        if self.proc is not None:
            stop_popen(self.proc, grace=3.0)


def client_curl(env, nets, url, cafile=None, extra=()):
    """client_curl runs curl in the client namespace; returns (rc, http code, body, stderr)."""
    out = env.path(f"curl-{secrets.token_hex(4)}.out")
    argv = [IP, "netns", "exec", nets.client, "curl", "-sS", "--noproxy", "*", "-o", out,
            "-w", "%{http_code}", "--max-time", "15"]
    if cafile:
        argv += ["--cacert", cafile]
    cp = subprocess.run(argv + list(extra) + [url], capture_output=True, text=True, timeout=25)
    body = b""
    if os.path.exists(out):
        with open(out, "rb") as f:
            body = f.read()
    code = int(cp.stdout) if cp.stdout.strip().isdigit() else 0
    return cp.returncode, code, body, cp.stderr


def test(env):
    nets = Netns(env)
    pki = env.pki()
    ngx = NsNginx(env, pki, nets.origin)
    env.stack.callback(ngx.stop)
    ngx.start()
    flows = env.path("flows.jsonl")
    m = NsMitmd(env, nets.router, args=["--mode", "transparent", "--listen-host", "::",
                                        "--upstream-ca", pki.ca_cert, "--connect-timeout", "3",
                                        "-w", flows])
    env.stack.callback(m.stop)
    env.mitmds.append(m)
    m.start()
    how = nets.redirect(m.port)
    info(f"namespaces {nets.client} -> {nets.router} -> {nets.origin}; {how} REDIRECT of "
         f"80,443 to mitmd's port {m.port}")

    def origin_up():
        r = nets.run(nets.router, ["curl", "-s", "-k", f"https://{O4}/whoami"], check_rc=False)
        return r.returncode == 0

    check(wait_until(origin_up, 10, 0.2), "the origin's nginx did not come up in its namespace")

    step("the router does not forward: without the redirect, the origin is unreachable")
    rc = nets.run(nets.client, ["curl", "-s", "--max-time", "2", f"http://{O4}:8000/"],
                  check_rc=False).returncode
    check(rc != 0, "the client reached the origin on a port that is not redirected")

    cases = [  # (note, url, --resolve, expected /whoami body, record server address)
        ("HTTPS over IPv4", "https://www.origin.test/whoami", f"www.origin.test:443:{O4}",
         f"{R4O} {O4}:443", O4, True),
        ("HTTPS over IPv6", "https://www.origin.test/whoami", f"www.origin.test:443:[{O6}]",
         f"{R6O} {O6}:443", O6, True),
        ("plain HTTP over IPv4", f"http://{O4}/whoami", None, f"{R4O} {O4}:80", O4, False),
    ]
    for note, url, resolve, want, _, tls in cases:
        step(f"{note}: curl {url} from the client namespace, trusting only the mitmd CA -> the "
             f"origin says '{want}'")
        extra = ["--resolve", resolve] if resolve else []
        rc, code, body, err = client_curl(env, nets, url, m.ca_cert if tls else None, extra)
        check(rc == 0 and code == 200, f"curl rc {rc}, HTTP {code}: {err.strip()}")
        check(body.decode().strip() == want, f"origin answered {body!r}, expected {want!r}")

    step("a client connecting to mitmd's port itself (not redirected) is closed and recorded")
    rc, code, _, err = client_curl(env, nets, f"http://[{R6C}]:{m.port}/whoami")
    check(code == 0 and rc != 0, f"a direct connection got HTTP {code} (rc {rc})")

    step("a redirected connection to an address where nothing listens: reset, recorded")
    rc, code, _, err = client_curl(env, nets, f"https://{O4_DEAD}/", m.ca_cert)
    check(rc != 0 and code == 0, f"curl to {O4_DEAD} got HTTP {code} (rc {rc})")
    info(f"curl: {err.strip()}")

    step("flow lines: the client's address and, as mitmdump prints request.url, the original "
         "destination (the Host field's name only with --showhost)")
    out = m.stdout()
    pats = [
        r"^(\[::ffff:)?" + re.escape(C4) + r"\]?:\d+: GET https://" + re.escape(O4) +
        r"/whoami HTTP/1\.1 << 200 ",
        r"^\[" + re.escape(C6) + r"\]:\d+: GET https://\[" + re.escape(O6) + r"\]/whoami "
        r"HTTP/1\.1 << 200 ",
        r"^(\[::ffff:)?" + re.escape(C4) + r"\]?:\d+: GET http://" + re.escape(O4) +
        r"(:80)?/whoami HTTP/1\.1 << 200 ",
        r"^\[" + re.escape(C6) + r"\]:\d+: .*error: transparent mode: the connection was not "
        r"redirected",
        r"^(\[::ffff:)?" + re.escape(C4) + r"\]?:\d+: .*error: connection refused",
    ]
    for pat in pats:
        mm = wait_until(lambda: re.search(pat, m.stdout(), re.M), 5)
        check(mm, f"no flow line matching {pat!r}:\n{m.stdout()}")
        info(mm.group(0))

    step("-w records: server = the original destination, TLS with the client's SNI")
    m.stop()
    recs = read_records(flows)
    gets = [r for r in recs if r["request"]["method"] == "GET"]
    check(len(gets) == 3, f"{len(gets)} GET records, expected 3: {[r['request'] for r in recs]}")
    for (note, _, _, _, addr, tls), r in zip(cases, gets):
        check(r["server"]["address"] == addr, f"{note}: server {r['server']}")
        check(r["response"]["status"] == 200, f"{note}: status {r['response']}")
        if tls:
            check(r["tls"] and r["tls"].get("sni") == "www.origin.test", f"{note}: tls {r['tls']}")
            # the record keeps the Host field's URL (pretty_url, what filters match)
            check(r["request"]["url"] == "https://www.origin.test/whoami",
                  f"{note}: recorded URL {r['request']['url']}")
    errs = [r["error"] for r in recs if r.get("error")]
    check(len(errs) == 2 and any("not redirected" in e for e in errs) and
          any("refused" in e for e in errs), f"error records: {errs}")


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("SKIP: network namespaces need root")
        sys.exit(77)
    if IP is None or (NFT is None and (IPT is None or IP6T is None)):
        print("SKIP: needs ip and nft (or iptables + ip6tables)")
        sys.exit(77)
    run(test, __doc__)
