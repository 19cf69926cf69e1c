#!/usr/bin/env python3
"""Forged certificates come from the shared cache: every connection for one host gets the
byte-identical leaf whichever worker serves it; another host gets another leaf with the
same per-run key; a restarted mitmd forges anew (new leaf key) from the same CA."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, info, proxy_connect, run, standard_setup, step, tls_over  # noqa


def leaf_der(m, host, port):
    sock, status, _, err = proxy_connect(m.port, host, port)
    check(status == 200, f"CONNECT {host} answered {status}: {err[:100]!r}")
    tls = tls_over(sock, host, m.ca_cert)
    der = tls.getpeercert(binary_form=True)
    tls.close()
    return der


def pubkey(der):
    """pubkey returns the SubjectPublicKeyInfo (as openssl prints it) of a DER cert."""
    cp = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-pubkey"],
                        input=der, capture_output=True)
    check(cp.returncode == 0, f"openssl cannot read the leaf: {cp.stderr!r}")
    return cp.stdout


def test(env):
    w = standard_setup(env, workers=2, origin=False)
    port = w.nginx.ports["valid"]
    check(w.mitmd.wait_workers(2), "expected 2 workers")

    step("12 fresh connections to www.origin.test get the byte-identical leaf")
    ders = [leaf_der(w.mitmd, "www.origin.test", port) for _ in range(12)]
    check(len(set(ders)) == 1, f"{len(set(ders))} different leaves for one host: not cached "
          "or not shared between workers")

    step("api.origin.test gets a different leaf (its own name) with the same leaf key")
    other = leaf_der(w.mitmd, "api.origin.test", port)
    check(other != ders[0], "api.origin.test got the www.origin.test leaf")
    check(pubkey(other) == pubkey(ders[0]), "leaves of one run use different keys "
          "(design: one leaf key per run)")

    w.mitmd.stop()
    m = re.search(r"forges=(\d+)", w.mitmd.stderr())
    if m:
        info(f"master stats: forges={m.group(1)}")
        check(int(m.group(1)) == 2, f"the master forged {m.group(1)} times for 2 name sets")

    step("a restarted mitmd (same confdir) forges a new leaf with a new key, same issuer")
    m2 = env.mitmd(args=["--upstream-ca", w.pki.ca_cert, "--resolve", "*.origin.test=127.0.0.1"],
                   confdir=w.mitmd.confdir, name="mitmd-restarted")
    again = leaf_der(m2, "www.origin.test", port)
    check(again != ders[0], "the restarted mitmd served the previous run's leaf")
    check(pubkey(again) != pubkey(ders[0]), "the leaf key did not change across runs")


if __name__ == "__main__":
    run(test, __doc__)
