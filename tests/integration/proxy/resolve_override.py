#!/usr/bin/env python3
"""--resolve overrides DNS for upstreams: '*.origin.test=127.0.0.1' sends any
<sub>.origin.test to 127.0.0.1 (no DNS), an exact pattern matches one name, for HTTPS
interception and plain HTTP alike; the Host/SNI the origin sees stays the name."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, curl, info, run, standard_setup, step  # noqa: E402


def test(env):
    body = os.urandom(1024)
    w = standard_setup(env, files={"1k": body},
                       extra_args=["--resolve", "exact.example.test=127.0.0.1"])
    tls_port = w.nginx.ports["valid"]
    for host in ("www.origin.test", "WWW.Origin.Test"):
        step(f"https://{host}:{tls_port}/1k resolves via '*.origin.test=127.0.0.1'")
        code, got, err = curl(env, w.mitmd.port, f"https://{host}:{tls_port}/1k",
                              cafile=w.mitmd.ca_cert)
        check(code == 200 and got == body, f"{host}: HTTP {code} ({err.strip()})")

    for host in ("api.origin.test", "deep.sub.origin.test"):
        step(f"plain http://{host} resolves too")
        code, got, err = curl(env, w.mitmd.port, f"http://{host}:{w.nginx.plain_port}/1k")
        check(code == 200 and got == body, f"plain {host}: HTTP {code} ({err.strip()})")

    step("an exact pattern 'exact.example.test=127.0.0.1' resolves that name only")
    code, got, err = curl(env, w.mitmd.port, f"http://exact.example.test:{w.nginx.plain_port}/1k")
    check(code == 200 and got == body, f"exact pattern: HTTP {code} ({err.strip()})")
    step("the origin sees the original name in Host and in the upstream SNI")
    code, got, err = curl(env, w.mitmd.port, f"https://sni.origin.test:{w.origin.port}/conn",
                          cafile=w.mitmd.ca_cert)
    check(code == 200, f"HTTP {code} ({err.strip()})")
    seen = json.loads(got)
    info(f"origin reply {seen}")
    check(seen["host"] in ("sni.origin.test", f"sni.origin.test:{w.origin.port}"),
          f"origin saw Host {seen['host']!r}")
    check(seen["sni"] == "sni.origin.test", f"origin saw SNI {seen['sni']!r}, expected the "
          "client's SNI sni.origin.test")


if __name__ == "__main__":
    run(test, __doc__)
