#!/usr/bin/env python3
"""`mitmd cert NAME...` prints a forged chain from the confdir's CA that openssl verifies,
with the names as SANs; an unknown option exits 2 with a one-line error naming it."""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (cert_issuer_subject, cert_sans, cert_text, check, info,  # noqa: E402
                     pem_blocks, run, step)


def test(env):
    confdir = env.path("conf")
    step("`mitmd cert --confdir D example.test 10.1.2.3` prints a PEM chain")
    cp = env.run_cmd([env.mitmd_bin, "cert", "--confdir", confdir, "example.test", "10.1.2.3"])
    check(cp.returncode == 0, f"mitmd cert exited {cp.returncode}: {cp.stderr.strip()!r}")
    certs = pem_blocks(cp.stdout)
    check(len(certs) >= 1, f"no PEM certificate on stdout: {cp.stdout[:300]!r}")
    info(f"{len(certs)} certificate(s) printed")
    ca = os.path.join(confdir, "mitmd-ca-cert.pem")
    check(os.path.isfile(ca), f"{ca} does not exist after `mitmd cert`")

    leaf = env.path("leaf.pem")
    chain = env.path("chain.pem")
    with open(leaf, "w") as f:
        f.write(certs[0] + "\n")
    with open(chain, "w") as f:
        f.write("\n".join(certs[1:]) + "\n")

    step("openssl verify -CAfile mitmd-ca-cert.pem accepts the leaf")
    argv = ["openssl", "verify", "-CAfile", ca, "-purpose", "sslserver"]
    if len(certs) > 1:
        argv += ["-untrusted", chain]
    cp = env.run_cmd(argv + [leaf])
    check(cp.returncode == 0 and "OK" in cp.stdout,
          f"openssl verify rejects the leaf: {cp.stdout.strip()} {cp.stderr.strip()}")

    step("the leaf has SANs DNS:example.test and IP Address:10.1.2.3, issuer CN mitmd")
    text = cert_text(certs[0])
    sans = cert_sans(text)
    info(f"SANs {sans}")
    check("DNS:example.test" in sans, f"DNS:example.test missing from SANs {sans}")
    check("IP Address:10.1.2.3" in sans, f"IP Address:10.1.2.3 missing from SANs {sans}")
    issuer, subject = cert_issuer_subject(text)
    info(f"issuer {issuer!r}, subject {subject!r}")
    check(re.search(r"(^|,)CN=mitmd\b", issuer), f"issuer {issuer!r} has no CN starting 'mitmd'")
    check("CA:FALSE" in text, "the forged leaf is not CA:FALSE")
    check("TLS Web Server Authentication" in text, "the forged leaf lacks EKU serverAuth")
    if len(certs) > 1:
        check(cert_text(certs[1]) == cert_text(open(ca).read()),
              "the second certificate printed is not the confdir's CA certificate")

    step("`mitmd --bogus` exits 2 with a one-line error naming --bogus")
    cp = env.run_cmd([env.mitmd_bin, "--bogus"], timeout=10)
    lines = [ln for ln in cp.stderr.splitlines() if ln.strip()]
    info(f"exit {cp.returncode}, stderr {cp.stderr!r}")
    check(cp.returncode == 2, f"`mitmd --bogus` exited {cp.returncode}, expected 2")
    check(len(lines) == 1, f"expected a one-line error, got {len(lines)} lines")
    check("--bogus" in lines[0], f"the error does not name the option: {lines[0]!r}")


if __name__ == "__main__":
    run(test, __doc__)
