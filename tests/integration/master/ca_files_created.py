#!/usr/bin/env python3
"""First start creates the CA files in the confdir; later starts reuse them; a corrupt CA key
file, a CA key readable by group or others, or a confdir writable by them stops start-up with a
clear message and is left untouched."""
import os
import stat
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import TestFailure, cert_text, check, info, run, step  # noqa: E402

FILES = ["mitmd-ca.pem", "mitmd-ca-cert.pem", "mitmd-ca-cert.cer", "mitmd-ca-cert.p12"]


def read(path):
    with open(path, "rb") as f:
        return f.read()


def test(env):
    confdir = env.path("conf")
    step("first start creates " + ", ".join(FILES) + " in a fresh --confdir")
    m = env.mitmd(confdir=confdir, name="mitmd-first")
    for name in FILES:
        p = os.path.join(confdir, name)
        check(os.path.isfile(p), f"{p} was not created on first start")
        check(os.path.getsize(p) > 0, f"{p} is empty")
    step("'CA certificate:' start-up line names mitmd-ca-cert.pem")
    check(f"CA certificate: {os.path.join(confdir, 'mitmd-ca-cert.pem')}" in m.stderr(),
          "stderr has no 'mitmd: CA certificate: <confdir>/mitmd-ca-cert.pem' line")

    step("mitmd-ca.pem (private key) has mode 0600")
    mode = stat.S_IMODE(os.stat(os.path.join(confdir, "mitmd-ca.pem")).st_mode)
    check(mode == 0o600, f"mitmd-ca.pem has mode {mode:04o}, expected 0600")

    step("mitmd-ca.pem holds a private key and the certificate")
    key_pem = read(os.path.join(confdir, "mitmd-ca.pem")).decode("ascii", "replace")
    check("PRIVATE KEY-----" in key_pem, "mitmd-ca.pem contains no PEM private key")
    check("-----BEGIN CERTIFICATE-----" in key_pem, "mitmd-ca.pem contains no certificate")

    step("mitmd-ca-cert.pem is a CA certificate (CA:TRUE), .cer is the same cert in DER")
    cert_pem = read(os.path.join(confdir, "mitmd-ca-cert.pem")).decode()
    text = cert_text(cert_pem)
    check("CA:TRUE" in text, "mitmd-ca-cert.pem lacks basicConstraints CA:TRUE")
    der_text = cert_text(read(os.path.join(confdir, "mitmd-ca-cert.cer")), der=True)
    check(der_text == text, "mitmd-ca-cert.cer (DER) is not the same certificate as the .pem")
    cp = env.run_cmd(["openssl", "pkcs12", "-in", os.path.join(confdir, "mitmd-ca-cert.p12"),
                      "-nokeys", "-passin", "pass:"])
    if cp.returncode != 0:  # OpenSSL 3 refuses legacy PBEs without -legacy
        cp = env.run_cmd(["openssl", "pkcs12", "-legacy", "-in",
                          os.path.join(confdir, "mitmd-ca-cert.p12"), "-nokeys", "-passin",
                          "pass:"])
    check(cp.returncode == 0, f"mitmd-ca-cert.p12 does not parse with an empty password: "
          f"{cp.stderr.strip()}")
    check(cert_text(cp.stdout) == text, "the .p12 does not hold the CA certificate")
    m.stop()

    before = {name: read(os.path.join(confdir, name)) for name in FILES}
    step("second start with the same confdir reuses the CA (files byte-for-byte equal)")
    m2 = env.mitmd(confdir=confdir, name="mitmd-second")
    for name in FILES:
        check(read(os.path.join(confdir, name)) == before[name],
              f"{name} changed on the second start; the CA must be reused")
    m2.stop()

    step("a corrupt mitmd-ca.pem stops start-up: non-zero exit, message naming the file")
    key_path = os.path.join(confdir, "mitmd-ca.pem")
    garbage = b"-----BEGIN PRIVATE KEY-----\nthis is not base64 !!!\n-----END PRIVATE KEY-----\n"
    with open(key_path, "wb") as f:
        f.write(garbage)
    os.chmod(key_path, 0o600)
    m3 = env.mitmd(confdir=confdir, name="mitmd-corrupt", start=False)
    m3.start(wait=False)
    rc = m3.wait_exit(10)
    if rc is None:
        raise TestFailure("mitmd kept running with a corrupt mitmd-ca.pem (no exit within 10s)")
    err = m3.stderr()
    info(f"exit code {rc}; stderr: {err.strip()!r}")
    check(rc != 0, "mitmd exited 0 with a corrupt mitmd-ca.pem")
    check("listening on" not in err, "mitmd said 'listening on' with a corrupt CA")
    check("mitmd-ca.pem" in err, "the error message does not name mitmd-ca.pem")
    step("the corrupt file is left unchanged (not overwritten by a new CA)")
    check(read(key_path) == garbage, "mitmd-ca.pem was modified after a failed start")
    check(read(os.path.join(confdir, "mitmd-ca-cert.pem")) == before["mitmd-ca-cert.pem"],
          "mitmd-ca-cert.pem was modified after a failed start")


    step("a CA key file readable by others (0644) is refused, as OpenSSH refuses a private key, "
         "and left as it is")
    with open(key_path, "wb") as f:
        f.write(before["mitmd-ca.pem"])
    for mode in (0o644, 0o640):
        os.chmod(key_path, mode)
        m4 = env.mitmd(confdir=confdir, name=f"mitmd-key-{mode:o}", start=False)
        m4.start(wait=False)
        rc = m4.wait_exit(10)
        err = m4.stderr()
        info(f"key mode {mode:04o}: exit {rc}; stderr: {err.strip()!r}")
        check(rc is not None and rc != 0, f"mitmd accepted a CA key with mode {mode:04o}")
        check("listening on" not in err, "it said 'listening on' first")
        check("mitmd-ca.pem" in err and "chmod 600" in err,
              f"the message does not name the file and the fix: {err!r}")
        check(stat.S_IMODE(os.stat(key_path).st_mode) == mode, "the key file mode was changed")
        check(read(key_path) == before["mitmd-ca.pem"], "the key file was changed")
    os.chmod(key_path, 0o600)

    step("a confdir writable by group or others (0777) is refused")
    os.chmod(confdir, 0o777)
    m5 = env.mitmd(confdir=confdir, name="mitmd-confdir-777", start=False)
    m5.start(wait=False)
    rc = m5.wait_exit(10)
    err = m5.stderr()
    info(f"confdir 0777: exit {rc}; stderr: {err.strip()!r}")
    os.chmod(confdir, 0o700)
    check(rc is not None and rc != 0, "mitmd accepted a world-writable confdir")
    check(confdir in err and "chmod go-w" in err,
          f"the message does not name the confdir and the fix: {err!r}")
    m6 = env.mitmd(confdir=confdir, name="mitmd-fixed")
    check(m6.port, "mitmd does not start once the modes are fixed")


if __name__ == "__main__":
    run(test, __doc__)
