#!/usr/bin/env python3
"""The certificate mitmd shows a client is forged by the mitmd CA for the requested host:
issuer = mitmd CA, SANs include the SNI host and the upstream's names (openssl s_client)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (cert_issuer_subject, cert_sans, cert_text, check, info,  # noqa: E402
                     run, s_client_chain, standard_setup, step)


def test(env):
    w = standard_setup(env, origin=False)
    port = w.nginx.ports["valid"]
    ca_text = cert_text(open(w.mitmd.ca_cert).read())
    _, ca_subject = cert_issuer_subject(ca_text)

    step("openssl s_client -proxy ... -servername www.origin.test -showcerts gets a chain")
    chain = s_client_chain(w.mitmd.port, "www.origin.test", port, servername="www.origin.test")
    leaf = cert_text(chain[0])
    issuer, subject = cert_issuer_subject(leaf)
    sans = cert_sans(leaf)
    info(f"leaf subject {subject!r}, issuer {issuer!r}, SANs {sans}")

    step("leaf issuer is the mitmd CA (not the test origin CA)")
    check(issuer == ca_subject, f"leaf issuer {issuer!r} != mitmd CA subject {ca_subject!r}")
    check("mitmd test origin CA" not in issuer, "the origin's real certificate was passed through")

    step("leaf SANs contain the SNI host and the upstream certificate's names")
    check("DNS:www.origin.test" in sans, f"DNS:www.origin.test missing from {sans}")
    for name in ("DNS:origin.test", "DNS:*.origin.test"):
        check(name in sans, f"upstream name {name} missing from the forged SANs {sans}")

    step("the forged leaf verifies against mitmd-ca-cert.pem for www.origin.test")
    leaf_path = env.path("leaf.pem")
    with open(leaf_path, "w") as f:
        f.write(chain[0] + "\n")
    untrusted = env.path("rest.pem")
    with open(untrusted, "w") as f:
        f.write("\n".join(chain[1:]) + "\n")
    argv = ["openssl", "verify", "-CAfile", w.mitmd.ca_cert, "-verify_hostname",
            "www.origin.test", "-purpose", "sslserver"]
    if len(chain) > 1:
        argv += ["-untrusted", untrusted]
    cp = env.run_cmd(argv + [leaf_path])
    check(cp.returncode == 0, f"openssl verify: {cp.stdout.strip()} {cp.stderr.strip()}")

    step("a second host on the same upstream gets its own name in the SANs")
    chain2 = s_client_chain(w.mitmd.port, "api.origin.test", port, servername="api.origin.test")
    sans2 = cert_sans(cert_text(chain2[0]))
    check("DNS:api.origin.test" in sans2, f"DNS:api.origin.test missing from {sans2}")


if __name__ == "__main__":
    run(test, __doc__)
