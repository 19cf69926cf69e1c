#!/usr/bin/env python3
"""An upstream whose certificate fails verification (expired, wrong host, self-signed) gets
the client a forged cert for the name it asked for, then 502 with the reason in the body."""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, curl, info, run, standard_setup, step  # noqa: E402

CASES = [
    ("expired", "expired.origin.test", r"expired"),
    ("wronghost", "wronghost.origin.test", r"hostname|host name|mismatch"),
    ("selfsigned", "selfsigned.origin.test", r"self[- ]signed"),
]


def test(env):
    w = standard_setup(env, origin=False)
    for name, host, reason in CASES:
        url = f"https://{host}:{w.nginx.ports[name]}/1k"
        step(f"{name}: curl {url} -> forged cert accepted, 502, body matches /{reason}/")
        code, body, err = curl(env, w.mitmd.port, url, cafile=w.mitmd.ca_cert)
        text = body.decode("utf-8", "replace")
        info(f"HTTP {code}, body {text.strip()[:200]!r}")
        check(code != 0, f"curl failed before HTTP (the client must get a forged cert for "
              f"{host} and then a 502): {err.strip()}")
        check(code == 502, f"expected 502 for the {name} upstream, got {code}")
        check(re.search(reason, text, re.I), f"502 body does not give the reason "
              f"(/{reason}/): {text!r}")
        check(re.search(r"certificate|verify", text, re.I),
              f"502 body does not say certificate verification failed: {text!r}")

    step("the same upstreams work with -k/--ssl-insecure (verification is the only cause)")
    m2 = env.mitmd(args=["-k", "--resolve", "*.origin.test=127.0.0.1"], name="mitmd-insecure")
    for name, host, _ in CASES:
        code, body, err = curl(env, m2.port, f"https://{host}:{w.nginx.ports[name]}/1k",
                               cafile=m2.ca_cert)
        check(code == 200 and len(body) == 1024, f"{name} with -k: HTTP {code}, {err.strip()}")


if __name__ == "__main__":
    run(test, __doc__)
