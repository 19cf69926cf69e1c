#!/usr/bin/env python3
"""-q/--quiet suppresses the per-exchange flow lines on stdout but not the -w flow file;
without -q every exchange (also a 502) gets a flow line with its error text."""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, curl, info, run, standard_setup, step, wait_until  # noqa: E402


def test(env):
    w = standard_setup(env, origin=False)
    ok_url = f"https://www.origin.test:{w.nginx.ports['valid']}/1k"
    bad_url = f"https://expired.origin.test:{w.nginx.ports['expired']}/1k"

    step("without -q: a flow line for a 200 and one for a 502 carrying the error text")
    for url, want in ((ok_url, 200), (bad_url, 502)):
        code, _, err = curl(env, w.mitmd.port, url, cafile=w.mitmd.ca_cert)
        check(code == want, f"{url}: HTTP {code}, expected {want} ({err.strip()})")
    pat_ok = re.compile(r"^127\.0\.0\.1:\d+: GET " + re.escape(ok_url) + r" HTTP/1\.1 << 200", re.M)
    pat_bad = re.compile(r"^127\.0\.0\.1:\d+: GET " + re.escape(bad_url) +
                         r" HTTP/1\.1 << 502 Bad Gateway.*expired", re.M)
    check(wait_until(lambda: pat_ok.search(w.mitmd.stdout()), 3),
          f"no flow line for the 200 on stdout:\n{w.mitmd.stdout()}")
    check(wait_until(lambda: pat_bad.search(w.mitmd.stdout()), 3),
          f"no '<< 502 Bad Gateway ... expired' flow line on stdout:\n{w.mitmd.stdout()}")
    info(pat_bad.search(w.mitmd.stdout()).group(0))

    step("with -q: no flow lines on stdout, the -w file still gets the records")
    flows = env.path("quiet.jsonl")
    q = env.mitmd(args=["-q", "-w", flows, "--upstream-ca", w.pki.ca_cert,
                        "--resolve", "*.origin.test=127.0.0.1"], name="mitmd-quiet")
    for url in (ok_url, bad_url):
        curl(env, q.port, url, cafile=q.ca_cert)
    q.stop()
    check(q.stdout().strip() == "", f"-q still printed on stdout:\n{q.stdout()}")
    with open(flows) as f:
        n = sum(1 for line in f if line.strip())
    check(n == 2, f"-w file has {n} records with -q, expected 2")


if __name__ == "__main__":
    run(test, __doc__)
