#!/usr/bin/env python3
"""Reverse mode sends the server its own name in Host, as mitmproxy does by default
(keep_host_header=false), and records the server's URL; with --set keep_host_header=true the
client's Host goes through unchanged."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, info, run, standard_setup, step, wait_until  # noqa: E402


def fetch_headers(env, port, cafile):
    """fetch_headers GETs /headers from mitmd (the server) as https://front.test:PORT."""
    cp = subprocess.run(["curl", "-sS", "--noproxy", "*", "--max-time", "20", "--cacert", cafile,
                         "--resolve", f"front.test:{port}:127.0.0.1",
                         f"https://front.test:{port}/headers"],
                        capture_output=True, text=True, timeout=30)
    check(cp.returncode == 0 and cp.stdout.startswith("["), f"curl: {cp.stderr.strip()} {cp.stdout[:300]!r}")
    return {k.lower(): v for k, v in json.loads(cp.stdout)}


def test(env):
    w = standard_setup(env, origin=True)
    server = f"api.origin.test:{w.origin.port}"
    base = ["--upstream-ca", w.pki.ca_cert, "--resolve", "*.origin.test=127.0.0.1",
            "--mode", f"reverse:https://{server}"]

    step(f"reverse:https://{server}: the origin sees Host {server}")
    rev = env.mitmd(args=base, name="rev-default")
    got = fetch_headers(env, rev.port, rev.ca_cert)
    info(f"origin got Host {got.get('host')!r}")
    check(got.get("host") == server, f"Host {got.get('host')!r}, expected {server!r}")
    # the flow line is written after the response goes out: wait for it
    check(wait_until(lambda: f"GET https://{server}/headers" in rev.stdout(), 5),
          f"the flow line does not name the server:\n{rev.stdout()}")

    step("--set keep_host_header=true: the client's Host goes through")
    keep = env.mitmd(args=base + ["--set", "keep_host_header=true"], name="rev-keep")
    got = fetch_headers(env, keep.port, keep.ca_cert)
    check(got.get("host") == f"front.test:{keep.port}",
          f"Host {got.get('host')!r}, expected the client's front.test:{keep.port}")


if __name__ == "__main__":
    run(test, __doc__)
