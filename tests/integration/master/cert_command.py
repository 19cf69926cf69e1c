#!/usr/bin/env python3
"""`mitmd cert NAME...` prints a forged chain from the confdir's CA that openssl verifies,
with the names as SANs; its options go before or after the word `cert`; it says on stderr
when it created a new CA (and not when it used one); an unknown option exits 2 with a
one-line error naming it."""
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
    check("created a new CA" in cp.stderr and confdir in cp.stderr,
          f"`mitmd cert` created a CA without saying so: stderr {cp.stderr!r}")

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

    step("`mitmd --confdir D cert NAME` (options before `cert`) uses the same CA, says nothing "
         "about creating one")
    cp = env.run_cmd([env.mitmd_bin, "--confdir", confdir, "cert", "other.test"])
    check(cp.returncode == 0, f"`mitmd --confdir D cert NAME` exited {cp.returncode}: "
          f"{cp.stderr.strip()!r}")
    certs2 = pem_blocks(cp.stdout)
    check(len(certs2) >= 2 and cert_text(certs2[1]) == cert_text(open(ca).read()),
          "the chain printed does not end in the confdir's CA")
    check("DNS:other.test" in cert_sans(cert_text(certs2[0])), "other.test missing from SANs")
    check("created" not in cp.stderr, f"a second `mitmd cert` claims a new CA: {cp.stderr!r}")

    step("`mitmd cert NAME --set confdir=D2` (options after the names) creates D2's CA, says so")
    confdir2 = env.path("conf2")
    cp = env.run_cmd([env.mitmd_bin, "cert", "third.test", "--set", f"confdir={confdir2}"])
    check(cp.returncode == 0, f"exited {cp.returncode}: {cp.stderr.strip()!r}")
    check(os.path.isfile(os.path.join(confdir2, "mitmd-ca.pem")), "no CA in the --set confdir")
    check("created a new CA" in cp.stderr and confdir2 in cp.stderr,
          f"no 'created a new CA' line naming {confdir2}: {cp.stderr!r}")

    step("`mitmd --bogus` exits 2 with a one-line error naming --bogus")
    cp = env.run_cmd([env.mitmd_bin, "--bogus"], timeout=10)
    lines = [ln for ln in cp.stderr.splitlines() if ln.strip()]
    info(f"exit {cp.returncode}, stderr {cp.stderr!r}")
    check(cp.returncode == 2, f"`mitmd --bogus` exited {cp.returncode}, expected 2")
    check(len(lines) == 1, f"expected a one-line error, got {len(lines)} lines")
    check("--bogus" in lines[0], f"the error does not name the option: {lines[0]!r}")


if __name__ == "__main__":
    run(test, __doc__)
