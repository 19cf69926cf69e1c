#!/usr/bin/env python3
"""--proxyauth on a reverse listener answers as a server, as mitmproxy does when the proxy is
not explicit (addons/proxyauth.py is_http_proxy): 401 with `WWW-Authenticate: Basic
realm="mitmd"` (no Proxy-Authenticate) for a missing or wrong `Authorization`, over plain
HTTP/1.1, TLS HTTP/1.1 and HTTP/2; accepted credentials are consumed: the origin never sees
the Authorization field, and neither do the -w records. On a regular listener of the same
mitmd the 407 / Proxy-Authorization rules are unchanged and the client's own Authorization
reaches the origin. Failures are counted (auth_failed)."""
import base64
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from accesslib import CHALLENGE, curl_direct, basic, check_407, echoed_fields, raw_request  # noqa: E402
from harness import check, info, read_records, run, step, wait_stat, wait_until  # noqa: E402
import re  # noqa: E402

LINE_RE = re.compile(r"^mitmd: (.+?) listening at 127\.0\.0\.1:(\d+)\.$", re.M)
USER, PASS = "alice", "s3cret:with:colons"



def curl(env, args, url, timeout=15):
    return curl_direct(env, args, url, timeout, noproxy="")


def test(env):
    pki = env.pki()
    ngx = env.nginx(pki, {"1k": os.urandom(1024)})
    plain = env.origin(None)
    flows = env.path("flows.jsonl")
    m = env.mitmd(args=["--upstream-ca", pki.ca_cert, "--resolve", "*.origin.test=127.0.0.1",
                        "-w", flows, "--proxyauth", f"{USER}:{PASS}",
                        "--mode", f"reverse:http://127.0.0.1:{plain.port}@0",
                        "--mode", f"reverse:https://www.origin.test:{ngx.h2_port}@0",
                        "--mode", "regular@0"])
    ports = {d: int(p) for d, p in LINE_RE.findall(m.stderr())}
    info(f"listeners: {ports}")
    rev_plain = ports[f"reverse proxy to http://127.0.0.1:{plain.port}"]
    rev_h2 = ports[f"reverse proxy to https://www.origin.test:{ngx.h2_port}"]
    regular = ports["HTTP(S) proxy"]
    good = basic(USER, PASS)
    failures = 0

    step("plain HTTP/1.1 without credentials: 401 + WWW-Authenticate, no Proxy-Authenticate")
    status, hdrs, body = raw_request(rev_plain, b"GET /headers HTTP/1.1\r\nHost: x\r\n\r\n")
    failures += 1
    check(status == 401, f"answered {status}, expected 401")
    check(hdrs.get("www-authenticate") == CHALLENGE, f"WWW-Authenticate: {hdrs}")
    check("proxy-authenticate" not in hdrs, f"a server's 401 has no Proxy-Authenticate: {hdrs}")

    step("wrong password, and the right one as Proxy-Authorization: 401 both")
    for field in (f"Authorization: {basic(USER, 'nope')}", f"Proxy-Authorization: {good}"):
        status, hdrs, _ = raw_request(
            rev_plain, f"GET /headers HTTP/1.1\r\nHost: x\r\n{field}\r\n\r\n".encode())
        failures += 1
        check(status == 401, f"{field.split(':')[0]}: answered {status}, expected 401")

    step("accepted Authorization: 200, and the origin never sees the field")
    status, hdrs, body = raw_request(
        rev_plain, f"GET /headers HTTP/1.1\r\nHost: x\r\nAuthorization: {good}\r\n"
                   "Connection: close\r\n\r\n".encode())
    check(status == 200, f"answered {status}: {body[:200]!r}")
    check("authorization" not in echoed_fields(body), f"origin saw {body[:300]!r}")

    step("TLS client (curl -u) to the reverse:http:// listener: 401 without, 200 with")
    code, ver, heads, body = curl(env, ["--cacert", m.ca_cert],
                                  f"https://127.0.0.1:{rev_plain}/headers")
    failures += 1
    check(code == 401 and "www-authenticate: " + CHALLENGE.lower() in heads,
          f"TLS without credentials: {code} {heads!r}")
    code, ver, heads, body = curl(env, ["--cacert", m.ca_cert, "-u", f"{USER}:{PASS}"],
                                  f"https://127.0.0.1:{rev_plain}/headers")
    check(code == 200 and "authorization" not in echoed_fields(body),
          f"TLS with credentials: {code} {body[:300]!r}")

    step("HTTP/2 (nginx behind reverse:https://): 401 over h2, then 200 with no authz upstream")
    h2 = ["--http2", "--cacert", m.ca_cert, "--resolve", f"www.origin.test:{rev_h2}:127.0.0.1"]
    url = f"https://www.origin.test:{rev_h2}/authz"
    code, ver, heads, body = curl(env, h2, url)
    failures += 1
    check(code == 401 and ver == "2" and "www-authenticate: " + CHALLENGE.lower() in heads,
          f"h2 without credentials: {code} HTTP/{ver} {heads!r}")
    code, ver, heads, body = curl(env, h2 + ["-u", f"{USER}:{PASS}"], url)
    check(code == 200 and ver == "2", f"h2 with credentials: {code} HTTP/{ver} {body[:200]!r}")
    check(body.startswith(b"HTTP/2.0 authz=[]"), f"nginx saw: {body[:200]!r}")

    step("regular listener: 407 without Proxy-Authorization; the client's Authorization passes")
    status, hdrs, _ = raw_request(
        regular, f"GET http://127.0.0.1:{plain.port}/headers HTTP/1.1\r\n"
                 "Host: 127.0.0.1\r\nAuthorization: Basic b3JpZ2luOnNlY3JldA==\r\n\r\n".encode())
    failures += 1
    check_407(status, hdrs, "regular without Proxy-Authorization")
    status, hdrs, body = raw_request(
        regular, f"GET http://127.0.0.1:{plain.port}/headers HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 f"Proxy-Authorization: {good}\r\nAuthorization: Basic b3JpZ2luOnNlY3JldA==\r\n"
                 "Connection: close\r\n\r\n".encode())
    fields = dict((k.lower(), v) for k, v in json.loads(body))
    check(status == 200 and fields.get("authorization") == "Basic b3JpZ2luOnNlY3JldA==" and
          "proxy-authorization" not in fields, f"regular: {status} {fields}")

    step("records hold no credential of mitmd's; failures are counted")
    secret = base64.b64encode(f"{USER}:{PASS}".encode()).decode()
    check(wait_until(lambda: len(read_records(flows)) >= 9, 5),
          f"expected >= 9 records, got {len(read_records(flows))}")
    text = open(flows).read()
    check(secret not in text and PASS not in text, "a -w record holds the password")
    stats = wait_stat(m, "auth_failed", failures)
    check(stats.get("auth_failed", 0) >= failures,
          f"auth_failed={stats.get('auth_failed')}, expected >= {failures}")
    m.check_no_crash()


if __name__ == "__main__":
    run(test, __doc__)
