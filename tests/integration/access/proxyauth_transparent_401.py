#!/usr/bin/env python3
"""--proxyauth on a transparent listener answers as a server (mitmproxy's proxyauth addon:
is_http_proxy is false outside regular and upstream mode): in the namespaces of
edge/transparent_netns (client -> router running mitmd behind an nftables REDIRECT -> origin),
HTTPS and plain HTTP to the origin without credentials get 401 with `WWW-Authenticate: Basic
realm="mitmd"`; with `curl -u` they get the origin's answer, and the origin (nginx echoing
$http_authorization) saw no Authorization field. Skipped (77) when not root or without ip and
nft/iptables."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "edge"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import transparent_netns as tn  # noqa: E402
from harness import check, info, run, step, wait_until  # noqa: E402

USER, PASS = "carol", "tr4nsp:arent"


class AuthzNginx(tn.NsNginx):
    """AuthzNginx is NsNginx with /authz: "authz=[<the Authorization field received>]"."""

    def _conf(self):
        authz = ('location = /authz { default_type text/plain; '
                 'return 200 "authz=[$http_authorization]\\n"; } ')
        return super()._conf().replace("location = /whoami", authz + "location = /whoami")


def curl(env, nets, url, extra=()):
    """curl runs curl in the client namespace; returns (code, lower-cased head, body)."""
    out, hdr = env.path("c.out"), env.path("c.hdr")
    cp = nets.run(nets.client, ["curl", "-sS", "--noproxy", "*", "-o", out, "-D", hdr, "-w",
                                "%{http_code}", "--max-time", "15"] + list(extra) + [url],
                  check_rc=False, timeout=25)
    body = open(out, "rb").read() if os.path.exists(out) else b""
    head = open(hdr, errors="replace").read().lower() if os.path.exists(hdr) else ""
    for p in (out, hdr):
        if os.path.exists(p):
            os.unlink(p)
    code = int(cp.stdout) if cp.stdout.strip().isdigit() else 0
    return code, head, body


def test(env):
    nets = tn.Netns(env)
    pki = env.pki()
    ngx = AuthzNginx(env, pki, nets.origin)
    env.stack.callback(ngx.stop)
    ngx.start()
    m = tn.NsMitmd(env, nets.router, args=["--mode", "transparent", "--listen-host", "::",
                                           "--upstream-ca", pki.ca_cert,
                                           "--proxyauth", f"{USER}:{PASS}"])
    env.stack.callback(m.stop)
    env.mitmds.append(m)
    m.start()
    info(f"{nets.redirect(m.port)} REDIRECT of 80,443 to mitmd's port {m.port}")
    check(wait_until(lambda: nets.run(nets.router, ["curl", "-s", "-k",
                                                    f"https://{tn.O4}/whoami"],
                                      check_rc=False).returncode == 0, 10, 0.2),
          "the origin's nginx did not come up in its namespace")
    tls = ["--cacert", m.ca_cert, "--resolve", f"www.origin.test:443:{tn.O4}"]
    for note, url, extra in (("HTTPS", "https://www.origin.test/authz", tls),
                             ("plain HTTP", f"http://{tn.O4}/authz", [])):
        step(f"{note} without credentials: 401 with WWW-Authenticate (not 407)")
        code, head, body = curl(env, nets, url, extra)
        check(code == 401 and 'www-authenticate: basic realm="mitmd"' in head and
              "proxy-authenticate" not in head, f"{note}: {code} {head!r}")
        step(f"{note} with curl -u: the origin's answer, with no Authorization at the origin")
        code, head, body = curl(env, nets, url, extra + ["-u", f"{USER}:{PASS}"])
        check(code == 200 and body == b"authz=[]\n", f"{note} with -u: {code} {body[:200]!r}")
        code, head, body = curl(env, nets, url, extra + ["-u", f"{USER}:wrong"])
        check(code == 401, f"{note} with a wrong password: {code}")
    m.check_no_crash()


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("SKIP: network namespaces need root")
        sys.exit(77)
    if tn.IP is None or (tn.NFT is None and (tn.IPT is None or tn.IP6T is None)):
        print("SKIP: needs ip and nft (or iptables + ip6tables)")
        sys.exit(77)
    run(test, __doc__)
