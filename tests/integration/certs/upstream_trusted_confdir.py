#!/usr/bin/env python3
"""mitmproxy's --set ssl_verify_upstream_trusted_confdir=DIR: upstream servers are verified
against the CA certificates in a directory prepared with `openssl rehash` (hash links beside
the PEM files, and a file that is not a certificate). The master reads the directory; the
workers, which may not open it, get the certificates as their --upstream-ca. Without it
(and without --upstream-ca) the test origin is untrusted: 502 naming the verify failure. A
directory without a certificate, or one that does not exist, stops start-up with one line;
a certificate added after start is not read (the directory is read once, at start)."""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (check, check_start_refused, curl, info, run, sha256_bytes,  # noqa: E402
                     standard_setup, step)


def test(env):
    w = standard_setup(env, origin=False)
    body = open(os.path.join(w.nginx.root, "1k"), "rb").read()
    url = f"https://www.origin.test:{w.nginx.ports['valid']}/1k"
    resolve = ["--resolve", "*.origin.test=127.0.0.1"]

    step("a rehashed directory with the test CA (and a note that is no certificate)")
    d = env.mkdir("trusted")
    shutil.copy(w.pki.ca_cert, os.path.join(d, "origin-ca.pem"))
    with open(os.path.join(d, "README.txt"), "w") as f:
        f.write("CA certificates for upstream verification\n")
    cp = subprocess.run(["openssl", "rehash", d], capture_output=True, text=True)
    check(cp.returncode == 0, f"openssl rehash: {cp.stderr}")
    links = [n for n in os.listdir(d) if os.path.islink(os.path.join(d, n))]
    info(f"directory: {sorted(os.listdir(d))}")
    check(len(links) >= 1, "openssl rehash made no hash link")

    m = env.mitmd(args=resolve + ["--set", f"ssl_verify_upstream_trusted_confdir={d}"],
                  name="confdir")
    code, got, err = curl(env, m.port, url, cafile=m.ca_cert)
    check(code == 200 and sha256_bytes(got) == sha256_bytes(body),
          f"with the directory: HTTP {code} {got[:200]!r} {err.strip()}")

    step("without it the origin is untrusted: 502 naming the verification failure")
    plain = env.mitmd(args=resolve, name="no-confdir")
    code, got, _ = curl(env, plain.port, url, cafile=plain.ca_cert)
    info(f"no directory: {code} {got[:120]!r}")
    check(code == 502 and b"certificate" in got, f"without the directory: {code} {got!r}")

    step("the directory is read at start: a later change does not reach a running mitmd")
    os.unlink(os.path.join(d, "origin-ca.pem"))
    for n in links:
        os.unlink(os.path.join(d, n))
    code, got, err = curl(env, m.port, url, cafile=m.ca_cert)
    check(code == 200, f"after emptying the directory: HTTP {code} {err.strip()}")

    step("a directory without a certificate, or none at all: start-up refused")
    check_start_refused(env, resolve + ["--set", f"ssl_verify_upstream_trusted_confdir={d}"],
                        "no PEM certificate")
    check_start_refused(env, ["--set", "ssl_verify_upstream_trusted_confdir=" +
                              env.path("missing")], "ssl_verify_upstream_trusted_confdir")


if __name__ == "__main__":
    run(test, __doc__)
