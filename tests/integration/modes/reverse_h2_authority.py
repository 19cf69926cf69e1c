#!/usr/bin/env python3
"""Reverse mode over HTTP/2 on both sides (curl --http2 to mitmd, nginx's HTTP/2 server
behind it): the server gets its own name in :authority, as over HTTP/1.1 (the client's name
was forwarded before), the -w record's URL names the server, and with
--set keep_host_header=true the client's authority goes through unchanged."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, info, read_records, run, standard_setup, step, wait_until  # noqa: E402


def fetch(port, cafile):
    cp = subprocess.run(["curl", "-sS", "--http2", "--noproxy", "*", "--max-time", "20",
                         "--cacert", cafile, "--resolve", f"front.test:{port}:127.0.0.1",
                         "-w", "\\n%{http_version}", f"https://front.test:{port}/authority"],
                        capture_output=True, text=True, timeout=30)
    check(cp.returncode == 0, f"curl: {cp.stderr.strip()}")
    body, version = cp.stdout.rsplit("\n", 1)
    check(version == "2", f"curl spoke HTTP/{version} to mitmd, not HTTP/2")
    return body.strip()


def test(env):
    w = standard_setup(env, origin=False)
    server = f"www.origin.test:{w.nginx.h2_port}"
    base = ["--upstream-ca", w.pki.ca_cert, "--resolve", "*.origin.test=127.0.0.1",
            "--mode", f"reverse:https://{server}"]

    step(f"reverse:https://{server} over HTTP/2: the server sees :authority {server}")
    flows = env.path("rev.jsonl")
    m = env.mitmd(args=base + ["-w", flows], confdir=env.mkdir("conf-rev"), name="rev")
    got = fetch(m.port, m.ca_cert)
    info(f"nginx saw: {got!r}")
    check(got == f"HTTP/2.0 {server}", f"the server saw {got!r}, not HTTP/2.0 {server}")
    recs = wait_until(lambda: read_records(flows), 10)
    check(recs and recs[0]["request"]["url"] == f"https://{server}/authority",
          f"record URL {recs[0]['request']['url'] if recs else None!r}")

    step("--set keep_host_header=true: the client's authority goes through")
    m2 = env.mitmd(args=base + ["--set", "keep_host_header=true"], confdir=env.mkdir("conf-keep"),
                   name="keep")
    got = fetch(m2.port, m2.ca_cert)
    check(got == f"HTTP/2.0 front.test:{m2.port}", f"the server saw {got!r}")


if __name__ == "__main__":
    run(test, __doc__)
