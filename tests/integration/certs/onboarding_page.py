#!/usr/bin/env python3
"""http://mitm.it/ through mitmd (mitmproxy's onboarding app): curl -x gets the install page
(HTML, the six platforms, links to /cert/pem, /cert/p12 and /cert/cer); each link gives the
bytes of the confdir's mitmd-ca-cert.pem/.p12/.cer with mitmproxy's Content-Type and
Content-Disposition, also inside a CONNECT to mitm.it (https://mitm.it/ over a certificate
forged by mitmd's CA, as mitmproxy 10+ serves it); an unknown path is 404, POST 405; --set onboarding_host moves the page,
--set onboarding=false turns it off (the request then goes upstream like any other: 502 for
an unresolvable name). No upstream is ever contacted for the page: mitm.it does not resolve
here, and a plain origin named by --resolve sees no request."""
import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, curl, info, read_records, run, step, wait_until  # noqa: E402

FILES = {"pem": "application/x-x509-ca-cert", "p12": "application/x-pkcs12",
         "cer": "application/x-x509-ca-cert"}
PLATFORMS = ("Windows", "macOS", "Linux", "Firefox", "iOS", "Android")


def fetch(env, m, url, method=None):
    """fetch returns (status, headers {lower name: value}, body) of url through m."""
    hdr = env.path("h.txt")
    extra = ["-D", hdr] + (["-X", method] if method else [])
    code, body, err = curl(env, m.port, url, extra=extra)
    headers = {}
    if os.path.exists(hdr):
        for line in open(hdr, encoding="latin-1").read().splitlines()[1:]:
            k, _, v = line.partition(":")
            if v:
                headers[k.strip().lower()] = v.strip()
    return code, headers, body


def test(env):
    flows = env.path("flows.jsonl")
    m = env.mitmd(args=["-w", flows])
    confdir = m.confdir

    step("GET http://mitm.it/ through the proxy: 200, the install page")
    code, h, body = fetch(env, m, "http://mitm.it/")
    info(f"HTTP {code} {h.get('content-type')} {len(body)} bytes")
    check(code == 200, f"HTTP {code}")
    check(h.get("content-type") == "text/html; charset=utf-8", f"Content-Type {h}")
    page = body.decode()
    for p in PLATFORMS:
        check(p in page, f"the page says nothing about {p}")
    for ext in FILES:
        check(f'href="/cert/{ext}"' in page, f"no link to /cert/{ext}")

    for ext, ctype in FILES.items():
        step(f"/cert/{ext}: the bytes of {confdir}/mitmd-ca-cert.{ext}, {ctype}")
        code, h, body = fetch(env, m, f"http://mitm.it/cert/{ext}")
        want = open(os.path.join(confdir, f"mitmd-ca-cert.{ext}"), "rb").read()
        check(code == 200 and body == want, f"HTTP {code}, {len(body)} bytes vs {len(want)}")
        check(h.get("content-type") == ctype, f"Content-Type {h.get('content-type')}")
        check(h.get("content-disposition") == f"inline; filename=mitmd-ca-cert.{ext}",
              f"Content-Disposition {h.get('content-disposition')}")

    step("https://mitm.it/cert/pem inside a CONNECT (mitmproxy 10+): the same bytes, over a "
         "certificate forged by mitmd's CA")
    code, body, err = curl(env, m.port, "https://mitm.it/cert/pem", cafile=m.ca_cert)
    check(code == 200 and body == open(m.ca_cert, "rb").read(), f"HTTP {code} {err.strip()}")
    code, body, err = curl(env, m.port, "http://mitm.it/cert/cer", extra=["--proxytunnel"])
    check(code == 200 and body == open(os.path.join(confdir, "mitmd-ca-cert.cer"), "rb").read(),
          f"plain HTTP inside CONNECT mitm.it:80: HTTP {code} {err.strip()}")

    step("unknown path 404, POST 405, HEAD has the length and no body")
    check(fetch(env, m, "http://mitm.it/nope")[0] == 404, "unknown path is not 404")
    check(fetch(env, m, "http://mitm.it/", "POST")[0] == 405, "POST is not 405")
    code, h, body = fetch(env, m, "http://MITM.IT:80/cert/pem", "HEAD")
    check(code == 200 and body == b"" and h.get("content-length") == str(
        os.path.getsize(os.path.join(confdir, "mitmd-ca-cert.pem"))), f"HEAD: {code} {h}")

    step("the exchanges are recorded (-w), answered by mitmd, no server address")
    def onboarding_records():
        return [r for r in read_records(flows)
                if "mitm.it" in str(r.get("request", {}).get("url", ""))
                or "MITM.IT" in str(r.get("request", {}).get("url", ""))]

    # a record is written after its answer went out: give the last one a moment
    wait_until(lambda: len(onboarding_records()) >= 9, 5.0)
    recs = onboarding_records()
    info(f"{len(recs)} records for mitm.it")
    check(len(recs) >= 9, f"expected at least 9 records, got {len(recs)}")
    check(any(r["request"]["url"] == "https://mitm.it:443/cert/pem" for r in recs),
          "no record with the full https:// URL of the request inside the CONNECT")
    m.check_no_crash()

    step("--set onboarding_host=setup.test: the page moves; mitm.it goes upstream (502)")
    m2 = env.mitmd(args=["--set", "onboarding_host=setup.test"], name="mitmd-host")
    check(fetch(env, m2, "http://setup.test/")[0] == 200, "setup.test is not the page")
    code, _, body = fetch(env, m2, "http://mitm.it/")
    check(code == 502, f"mitm.it with another onboarding_host: HTTP {code} {body[:100]!r}")

    step("--set onboarding=false: http://mitm.it/ is an ordinary request (502, no such host)")
    m3 = env.mitmd(args=["--set", "onboarding=false"], name="mitmd-off")
    code, _, body = fetch(env, m3, "http://mitm.it/")
    info(f"HTTP {code} {body[:120]!r}")
    check(code == 502, f"onboarding=false: HTTP {code}")

    step("onboarding_port=P with mitm.it resolving to a listener on P: the page (plain and "
         "inside a CONNECT), and the listener sees no connection")
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    lport = lsock.getsockname()[1]
    try:
        m4 = env.mitmd(args=["--set", f"onboarding_port={lport}", "--resolve",
                             "mitm.it=127.0.0.1"], name="mitmd-port")
        code, h, _ = fetch(env, m4, f"http://mitm.it:{lport}/cert/cer")
        check(code == 200 and h.get("content-type") == FILES["cer"], f"HTTP {code} {h}")
        code, _, err = curl(env, m4.port, f"https://mitm.it:{lport}/", cafile=m4.ca_cert)
        check(code == 200, f"CONNECT mitm.it:{lport}: HTTP {code} {err.strip()}")
        lsock.settimeout(0.3)
        try:
            conn, _ = lsock.accept()
            conn.close()
            check(False, "the onboarding request reached the upstream listener")
        except socket.timeout:
            pass
    finally:
        lsock.close()
    for mm in (m2, m3, m4):
        mm.check_no_crash()


if __name__ == "__main__":
    run(test, __doc__)
