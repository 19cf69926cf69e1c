#!/usr/bin/env python3
"""testssl.sh (a widely used TLS scanner, Debian's package, unpatched) scans mitmd's
client-facing TLS: in reverse mode mitmd is the server it connects to, so every probe reaches
mitmd (through an explicit proxy, testssl sends some probes around it, straight to the
origin). SSLv2, SSLv3, TLS 1.0 and 1.1 are not offered, no CBC, 3DES, export, NULL or
anonymous suite is offered (Mozilla's intermediate profile: AEAD only), TLS 1.2 and 1.3 are;
the SSLv2-format probes are refused and recorded."""
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, info, run, standard_setup, step  # noqa: E402


def test(env):
    if shutil.which("testssl") is None:
        info("testssl (Debian package testssl.sh) is not installed: skipped")
        sys.exit(77)
    w = standard_setup(env, origin=False)
    flows = env.path("rev.jsonl")
    rev = env.mitmd(args=["--upstream-ca", w.pki.ca_cert, "--resolve", "*.origin.test=127.0.0.1",
                          "-w", flows, "--mode",
                          f"reverse:https://www.origin.test:{w.nginx.ports['valid']}"],
                    name="rev")

    step(f"testssl -p -s https://127.0.0.1:{rev.port} (mitmd in reverse mode is the server)")
    cp = subprocess.run(["testssl", "--quiet", "--color", "0", "--warnings", "off", "-p", "-s",
                         f"https://127.0.0.1:{rev.port}"],
                        capture_output=True, text=True, timeout=240)
    out = cp.stdout
    lines = {ln.split("  ")[0].strip(): ln.strip() for ln in out.splitlines() if ln.strip()}
    for k in ("SSLv2", "SSLv3", "TLS 1.2", "TLS 1.3", "Obsolete CBC ciphers (AES, ARIA etc.)"):
        info(lines.get(k, f"{k}: (missing)"))
    check(cp.returncode == 0, f"testssl exit {cp.returncode}:\n{out[-2000:]}{cp.stderr[-500:]}")
    for proto in ("SSLv2", "SSLv3", "TLS 1", "TLS 1.1"):
        check("not offered" in lines.get(proto, ""), f"{proto}: {lines.get(proto)!r}")
    for proto in ("TLS 1.2", "TLS 1.3"):
        check("offered (OK)" in lines.get(proto, ""), f"{proto}: {lines.get(proto)!r}")
    for cat in ("NULL ciphers (no encryption)", "Anonymous NULL Ciphers (no authentication)",
                "Export ciphers (w/o ADH+NULL)", "LOW: 64 Bit + DES, RC[2,4] (w/o export)",
                "Triple DES Ciphers / IDEA", "Obsolete CBC ciphers (AES, ARIA etc.)"):
        check("not offered" in lines.get(cat, ""), f"{cat}: {lines.get(cat)!r}")
    check("offered (OK)" in lines.get("Strong encryption (AEAD ciphers)", ""),
          f"AEAD: {lines.get('Strong encryption (AEAD ciphers)')!r}")

    step("the scan's SSLv2 probes were refused and recorded")
    with open(flows) as f:
        errors = [json.loads(x).get("error") or "" for x in f if x.strip()]
    check(any("SSLv2" in e for e in errors), f"no SSLv2 refusal among {len(errors)} records")


if __name__ == "__main__":
    run(test, __doc__)
