#!/usr/bin/env python3
"""--certs [DOMAIN=]FILE: mitmd serves the operator's certificate (leaf + chain + key from one
PEM file) for the names it covers instead of a forged one, and forges for every other host.
curl through mitmd trusting only the operator CA gets 200 from a covered host; the leaf the
client sees has the file's SHA-256 fingerprint (openssl s_client -proxy); DOMAIN may be a
"*." wildcard; without DOMAIN the certificate's own names decide; an uncovered host still gets
a leaf issued by mitmd's CA. At start, a missing file, a file without a key or with a key of
another certificate is refused with one line and exit 2."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from certs_lib import OperatorPki, pem_fingerprint  # noqa: E402
from harness import (cert_issuer_subject, cert_text, check, curl, info, run,  # noqa: E402
                     s_client_chain, standard_setup, step)


def test(env):
    op = OperatorPki(env.path("operator"))
    # explicit DOMAIN (a wildcard; mitmproxy's "*." forms match any depth)
    wild = op.leaf("wild", "operator wildcard", ["DNS:*.shop.origin.test"])
    # no DOMAIN: served for the names in the certificate (CN + SANs)
    named = op.leaf("named", "named.origin.test", ["DNS:named.origin.test"], rsa=True)
    # -k: the test origin's own certificate covers only one label under origin.test; what is
    # checked here is the client side
    w = standard_setup(env, extra_args=["-k", "--certs", f"*.shop.origin.test={wild}",
                                        "--certs", named])
    m = w.mitmd
    port = w.nginx.ports["valid"]

    for host, pem_name in (("a.shop.origin.test", "wild"), ("x.y.shop.origin.test", "wild"),
                           ("named.origin.test", "named")):
        if not host.startswith("x.y."):  # x.y.shop gets the file too, but no client accepts it
            step(f"curl https://{host}/1k trusting only the operator CA: 200, the original bytes")
            code, body, err = curl(env, m.port, f"https://{host}:{port}/1k", cafile=op.ca_cert)
            check(code == 200, f"curl: HTTP {code} {err.strip()}")
            check(body == open(os.path.join(w.nginx.root, "1k"), "rb").read(), "body differs")
        step(f"the leaf served for {host} is the --certs file's ({pem_name}), by fingerprint")
        chain = s_client_chain(m.port, host, port, servername=host)
        want = pem_fingerprint(op.cert_pem(pem_name))
        got = pem_fingerprint(chain[0])
        info(f"{host}: served {got[:16]}..., file {want[:16]}..., chain of {len(chain)}")
        check(got == want, f"{host}: served leaf {got} is not the --certs file's {want}")
        check(len(chain) == 2 and pem_fingerprint(chain[1]) == pem_fingerprint(
            open(op.ca_cert).read()), "the file's chain (operator CA) was not sent after the leaf")

    step("an uncovered host (www.origin.test) still gets a leaf forged by mitmd's CA")
    code, _, err = curl(env, m.port, f"https://www.origin.test:{port}/1k", cafile=m.ca_cert)
    check(code == 200, f"curl www.origin.test with mitmd's CA: HTTP {code} {err.strip()}")
    chain = s_client_chain(m.port, "www.origin.test", port, servername="www.origin.test")
    issuer, _ = cert_issuer_subject(cert_text(chain[0]))
    _, ca_subject = cert_issuer_subject(cert_text(open(m.ca_cert).read()))
    check(issuer == ca_subject, f"www.origin.test leaf issued by {issuer!r}, not mitmd's CA")
    check(pem_fingerprint(chain[0]) not in (pem_fingerprint(op.cert_pem("wild")),
                                            pem_fingerprint(op.cert_pem("named"))),
          "an uncovered host got an operator certificate")
    step("shop.origin.test itself is not covered by *.shop.origin.test: forged")
    chain = s_client_chain(m.port, "shop.origin.test", port, servername="shop.origin.test")
    issuer, _ = cert_issuer_subject(cert_text(chain[0]))
    check(issuer == ca_subject, f"shop.origin.test leaf issued by {issuer!r}")
    m.check_no_crash()

    # start-up checks: one line naming the file, exit 2
    certonly = env.path("certonly.pem")
    with open(certonly, "w") as f:
        f.write(op.cert_pem("wild"))
    mismatch = env.path("mismatch.pem")
    with open(mismatch, "w") as f:
        f.write(op.cert_pem("wild") + open(os.path.join(op.dir, "named.key")).read())
    for spec, cause in ((env.path("nope.pem"), "No such file"),
                        (f"a.test={certonly}", "no (unencrypted) PEM private key"),
                        (mismatch, "does not match")):
        step(f"--certs {os.path.basename(spec)}: exit 2, one line with '{cause}'")
        cp = env.run_cmd([env.mitmd_bin, "--confdir", env.path("conf2"), "-p", "0",
                          "--workers", "1", "--certs", spec], timeout=15)
        lines = [ln for ln in cp.stderr.splitlines() if ln.strip()]
        info(f"exit {cp.returncode}: {cp.stderr.strip()!r}")
        check(cp.returncode == 2, f"exit {cp.returncode}, expected 2")
        check(len(lines) == 1 and cause in lines[0] and "--certs" in lines[0],
              f"expected one line naming --certs and '{cause}': {lines}")


if __name__ == "__main__":
    run(test, __doc__)
