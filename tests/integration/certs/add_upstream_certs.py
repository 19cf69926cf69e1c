#!/usr/bin/env python3
"""mitmproxy's --set add_upstream_certs_to_client_chain=true: the client gets the forged leaf
and mitmd's CA, then the certificates the upstream server sent (here nginx's leaf for
*.origin.test, issued by the test CA). By default only the forged leaf and the CA. Checked
with `openssl s_client -proxy` (CONNECT through mitmd) and -showcerts: subjects and issuers
of each certificate served, and the request through it still answered (200, the body)."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, curl, info, run, sha256_bytes, standard_setup, step  # noqa: E402


def served_chain(m, port):
    """served_chain returns [(subject, issuer)] of the certificates mitmd serves for
    www.origin.test:PORT, through a CONNECT."""
    cp = subprocess.run(["openssl", "s_client", "-proxy", f"127.0.0.1:{m.port}", "-connect",
                         f"www.origin.test:{port}", "-servername", "www.origin.test",
                         "-showcerts", "-CAfile", m.ca_cert],
                        input="", capture_output=True, text=True, timeout=30)
    chain = re.findall(r"^ *\d+ s:(.*)\n *i:(.*)$", cp.stdout, re.M)
    check(chain, f"openssl s_client: rc {cp.returncode} {cp.stdout[-600:]} {cp.stderr[-300:]}")
    return [(s.strip(), i.strip()) for s, i in chain]


def test(env):
    w = standard_setup(env, origin=False)
    port = w.nginx.ports["valid"]
    body = open(os.path.join(w.nginx.root, "1k"), "rb").read()

    step("default: the forged leaf and mitmd's CA")
    chain = served_chain(w.mitmd, port)
    info(f"default chain: {chain}")
    check(len(chain) == 2 and chain[0][1] == chain[1][0] and "origin.test" in chain[0][0] and
          "test origin CA" not in chain[0][1],
          f"default chain {chain}")

    step("add_upstream_certs_to_client_chain=true: nginx's leaf follows, issued by the test CA")
    m = env.mitmd(args=["--upstream-ca", w.pki.ca_cert, "--resolve", "*.origin.test=127.0.0.1",
                        "--set", "add_upstream_certs_to_client_chain=true"], name="extras")
    chain = served_chain(m, port)
    info(f"with the upstream's: {chain}")
    check(len(chain) == 3 and chain[0][1] == chain[1][0] and "test origin CA" not in chain[0][1],
          f"chain {chain}")
    check("test origin CA" in chain[2][1] and "origin.test" in chain[2][0],
          f"the third certificate is not nginx's leaf: {chain[2]}")
    code, got, err = curl(env, m.port, f"https://www.origin.test:{port}/1k", cafile=m.ca_cert)
    check(code == 200 and sha256_bytes(got) == sha256_bytes(body), f"HTTP {code} {err}")


if __name__ == "__main__":
    run(test, __doc__)
