#!/usr/bin/env python3
"""A client that does not trust mitmd's CA is visible, as in mitmdump: each failed client
handshake gives a flow line and a -w record naming the host, the alert the client sent
(unknown_ca) and where the CA certificate to install is; stderr says it once, not once per
connection (a misconfigured load generator cannot flood it)."""
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import read_records, check, info, run, standard_setup, step, wait_until  # noqa: E402


def test(env):
    w = standard_setup(env, origin=False, flows=True)
    port = w.nginx.ports["valid"]
    url = f"https://www.origin.test:{port}/1k"

    step(f"curl {url} through mitmd without --cacert (system trust only) x5 -> TLS failure")
    for _ in range(5):
        r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-x", f"http://127.0.0.1:{w.mitmd.port}",
                            "--noproxy", "", url], capture_output=True, timeout=30,
                           env={**os.environ, "SSL_CERT_FILE": w.pki.ca_cert})
        check(r.returncode == 60, f"curl exit {r.returncode}: expected 60 (peer certificate "
              f"cannot be authenticated) {r.stderr[-200:]!r}")

    step("five flow lines name the host, the alert and the CA file to install")
    pat = re.compile(r"CONNECT www\.origin\.test:%d HTTP/1\.1 << error: client TLS handshake "
                     r"failed: the client does not trust mitmd's certificate for "
                     r"www\.origin\.test:%d \(alert unknown_ca\); install the CA certificate "
                     r"\S+/mitmd-ca-cert\.pem" % (port, port))
    check(wait_until(lambda: len(pat.findall(w.mitmd.stdout())) == 5, 5),
          f"expected 5 such lines:\n{w.mitmd.stdout()}")
    ca_path = os.path.dirname(w.mitmd.ca_cert)
    check(ca_path in w.mitmd.stdout(), f"the line does not give the confdir {ca_path}")

    step("five -w records with the same error")
    def records():
        return read_records(w.flows)
    check(wait_until(lambda: sum("unknown_ca" in (r["error"] or "") for r in records()) == 5, 5),
          f"records: {[r['error'] for r in records()]}")
    rec = records()[-1]
    check(rec["request"]["method"] == "CONNECT" and rec["response"] is None,
          f"record {rec['request']} {rec['response']}")

    step("stderr: one warning, not five")
    err = w.mitmd.stderr()
    n = err.count("does not trust mitmd's certificate")
    info(f"{n} warning line(s) on stderr")
    check(1 <= n <= 2, f"{n} warnings on stderr for 5 failures in a burst:\n{err}")


if __name__ == "__main__":
    run(test, __doc__)
