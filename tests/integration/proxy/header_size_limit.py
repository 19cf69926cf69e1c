#!/usr/bin/env python3
"""--max-header-size bounds request heads: by default (64 KiB) a 30 KB cookie passes to the
origin intact; with --max-header-size 4096 a 2 KB header passes and an 8 KB one is answered
431, on plain HTTP and inside an intercepted tunnel, and the proxy keeps working."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, curl, info, run, standard_setup, step  # noqa: E402


def test(env):
    w = standard_setup(env)
    org = w.origin.port
    plain_url = f"http://www.origin.test:{w.nginx.plain_port}/1k"

    step("default limit: a 30 KB Cookie header reaches the origin (HTTPS POST /sha256)")
    cookie = "c=" + "x" * 30000
    conn = w.mitmd.https_conn("www.origin.test", org)
    conn.request("POST", "/sha256", body=b"abc", headers={"Cookie": cookie})
    r = conn.getresponse()
    data = r.read()
    check(r.status == 200 and json.loads(data)["length"] == 3,
          f"30 KB cookie: {r.status} {data[:100]!r}")
    conn.close()

    m = env.mitmd(args=["--max-header-size", "4096", "--upstream-ca", w.pki.ca_cert,
                        "--resolve", "*.origin.test=127.0.0.1"], name="mitmd-small")
    for what, url, ca in (("plain", plain_url, None),
                          ("intercepted", f"https://www.origin.test:{org}/hello", m.ca_cert)):
        step(f"--max-header-size 4096, {what}: a 2 KB header passes")
        code, _, err = curl(env, m.port, url, cafile=ca, extra=["-H", "X-Pad: " + "p" * 2000])
        check(code == 200, f"2 KB header: HTTP {code} ({err.strip()})")
        step(f"--max-header-size 4096, {what}: an 8 KB header -> 431")
        code, body, err = curl(env, m.port, url, cafile=ca, extra=["-H", "X-Pad: " + "p" * 8000])
        info(f"HTTP {code} {body[:80]!r}")
        check(code == 431, f"8 KB header with a 4 KiB limit: HTTP {code}, expected 431")
        code, _, err = curl(env, m.port, url, cafile=ca)
        check(code == 200, f"after the 431: HTTP {code} ({err.strip()})")


if __name__ == "__main__":
    run(test, __doc__)
