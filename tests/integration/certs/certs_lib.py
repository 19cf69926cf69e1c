"""certs_lib: an operator PKI for the certs tests (openssl CLI): its own CA ("operator CA"),
leaf certificates with their chain and key in one PEM file (as --certs wants), client
certificates, and helpers to compare fingerprints."""
import base64
import hashlib
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import TestFailure  # noqa: E402


def ossl(cwd, *args, input=None):
    cp = subprocess.run(["openssl", *args], capture_output=True, cwd=cwd, input=input)
    if cp.returncode != 0:
        raise TestFailure(f"openssl {' '.join(args)} failed: {cp.stderr.decode()}")
    return cp.stdout


def pem_fingerprint(pem):
    """pem_fingerprint returns the SHA-256 of the DER of the first certificate in `pem`."""
    m = re.search(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", pem, re.S)
    if not m:
        raise TestFailure("no certificate in the PEM text")
    return hashlib.sha256(base64.b64decode("".join(m.group(1).split()))).hexdigest()


class OperatorPki:
    """OperatorPki makes a CA and leaves signed by it in directory `d`."""

    def __init__(self, d, name="operator"):
        self.dir = d
        os.makedirs(d, exist_ok=True)
        self.ca_cert = os.path.join(d, f"{name}-ca.pem")
        self.ca_key = os.path.join(d, f"{name}-ca.key")
        ossl(d, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", self.ca_key, "-out", self.ca_cert, "-days", "30",
             "-subj", f"/O=mitmd tests/CN=mitmd test {name} CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def leaf(self, name, cn, sans, usage="serverAuth", rsa=False):
        """leaf writes NAME.crt, NAME.key and NAME.pem (certificate, CA chain, key) and returns
        the .pem path."""
        key = os.path.join(self.dir, f"{name}.key")
        csr = os.path.join(self.dir, f"{name}.csr")
        crt = os.path.join(self.dir, f"{name}.crt")
        ext = os.path.join(self.dir, f"{name}.ext")
        with open(ext, "w") as f:
            f.write("[v3]\nbasicConstraints = critical,CA:FALSE\n"
                    "keyUsage = critical,digitalSignature" + (",keyEncipherment" if rsa else "")
                    + f"\nextendedKeyUsage = {usage}\n"
                    + (f"subjectAltName = {','.join(sans)}\n" if sans else ""))
        newkey = ["-newkey", "rsa:2048"] if rsa else ["-newkey", "ec", "-pkeyopt",
                                                       "ec_paramgen_curve:P-256"]
        ossl(self.dir, "req", "-new", *newkey, "-nodes", "-keyout", key, "-out", csr,
             "-subj", f"/CN={cn}")
        ossl(self.dir, "x509", "-req", "-in", csr, "-CA", self.ca_cert, "-CAkey", self.ca_key,
             "-set_serial", "0x" + os.urandom(16).hex(), "-days", "30", "-extfile", ext,
             "-extensions", "v3", "-out", crt)
        pem = os.path.join(self.dir, f"{name}.pem")
        with open(pem, "w") as f:
            f.write(open(crt).read() + open(self.ca_cert).read() + open(key).read())
        return pem

    def cert_pem(self, name):
        return open(os.path.join(self.dir, f"{name}.crt")).read()
