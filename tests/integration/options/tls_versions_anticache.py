#!/usr/bin/env python3
"""mitmproxy's --anticache, --anticomp and --set tls_version_{client,server}_{min,max} work as
in mitmproxy. anticache: the origin never sees If-None-Match or If-Modified-Since, so nginx
answers 200 with the whole body where plain mitmd relays its 304 (HTTP/1.1 and HTTP/2);
anticomp: the origin sees Accept-Encoding: identity, also where the client sent none. TLS
versions: two origins of this test, one speaking TLS 1.3 only, one TLS 1.2 only, answer which
version mitmd used; tls_version_server_max=TLS1_2 reaches the 1.2 origin with TLS 1.2 and
gets a 502 with the reason from the 1.3-only one, tls_version_server_min=TLS1_3 the other way
round; tls_version_client_min=TLS1_3 refuses a TLS 1.2-only client and client_max=TLS1_2
makes a client that could do 1.3 use 1.2. A minimum above its maximum, SSL3 as a maximum or
an unknown version: one line naming the option, exit 2."""
import hashlib
import json
import os
import ssl
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (answer_origin, check, check_start_refused, client_context,  # noqa: E402
                     curl, info, run, standard_setup, step)


def version_origin(env, pki, version):
    """version_origin starts a TLS origin (the Pki 'valid' certificate) that speaks only
    `version` (ssl.TLSVersion) and answers with the version of each connection; returns its
    port."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ctx.maximum_version = version
    ctx.load_cert_chain(*pki.certs["valid"])
    return answer_origin(env, lambda h: h.request.version().encode(), ctx)


def origin_fields(env, m, w, extra):
    """origin_fields GETs the Python origin's /headers through mitmd `m` with curl `extra`
    arguments; returns the request fields the origin received ({lower-name: value})."""
    code, body, err = curl(env, m.port, f"https://www.origin.test:{w.origin.port}/headers",
                           cafile=m.ca_cert, extra=extra)
    check(code == 200, f"/headers through mitmd: HTTP {code} {err.strip()}")
    return {k.lower(): v for k, v in json.loads(body)}


def client_version(m, port, max_version=None):
    """client_version opens a TLS connection to www.origin.test:port through mitmd's CONNECT
    (a client that offers at most `max_version`) and returns (negotiated version, origin's
    answer) or (None, the error)."""
    import http.client
    ctx = client_context(m.ca_cert)
    if max_version is not None:
        ctx.maximum_version = max_version
    conn = http.client.HTTPSConnection("127.0.0.1", m.port, timeout=10, context=ctx)
    conn.set_tunnel("www.origin.test", port)
    try:
        conn.request("GET", "/v")
        resp = conn.getresponse()
        return conn.sock.version(), resp.read().decode()
    except (ssl.SSLError, OSError) as e:
        return None, str(e)
    finally:
        conn.close()


def test(env):
    w = standard_setup(env)
    plain = w.mitmd
    base = ["--upstream-ca", w.pki.ca_cert, "--resolve", "*.origin.test=127.0.0.1"]
    anti = env.mitmd(args=base + ["--anticache", "--anticomp"], name="mitmd-anti")

    step("--anticache --anticomp: the origin sees no If-None-Match / If-Modified-Since and "
         "Accept-Encoding: identity; plain mitmd passes the client's fields on")
    asks = ["-H", 'If-None-Match: "abc"', "-H", "If-Modified-Since: Tue, 01 Dec 2026 00:00:00 GMT",
            "-H", "Accept-Encoding: gzip, br"]
    got = origin_fields(env, plain, w, asks)
    info(f"plain mitmd: {got}")
    check(got.get("if-none-match") == '"abc"' and "if-modified-since" in got and
          got.get("accept-encoding") == "gzip, br", f"plain mitmd changed the request: {got}")
    got = origin_fields(env, anti, w, asks)
    info(f"--anticache --anticomp: {got}")
    check("if-none-match" not in got and "if-modified-since" not in got,
          f"--anticache left a conditional field: {got}")
    check(got.get("accept-encoding") == "identity", f"--anticomp: {got}")
    got = origin_fields(env, anti, w, [])
    check(got.get("accept-encoding") == "identity",
          f"--anticomp without a client Accept-Encoding: {got}")

    want = hashlib.sha256(open(os.path.join(w.nginx.root, "1k"), "rb").read()).digest()
    for what, port, extra in (("HTTP/1.1", w.nginx.ports["valid"], []),
                              ("HTTP/2", w.nginx.h2_port, ["--http2"])):
        url = f"https://www.origin.test:{port}/1k"
        step(f"{what}: nginx's ETag sent back as If-None-Match: plain mitmd relays nginx's 304, "
             f"--anticache gets 200 and the whole body")
        hdr = env.path(f"etag-{port}.txt")
        code, body, err = curl(env, plain.port, url, cafile=plain.ca_cert,
                               extra=extra + ["-D", hdr])
        etag = next((ln.split(":", 1)[1].strip() for ln in open(hdr).read().splitlines()
                     if ln.lower().startswith("etag:")), None)
        check(code == 200 and etag, f"first GET: HTTP {code}, ETag {etag!r} {err.strip()}")
        cond = extra + ["-H", f"If-None-Match: {etag}"]
        code, body, err = curl(env, plain.port, url, cafile=plain.ca_cert, extra=cond)
        check(code == 304 and body == b"", f"plain mitmd: HTTP {code}, {len(body)} bytes")
        code, body, err = curl(env, anti.port, url, cafile=anti.ca_cert, extra=cond)
        check(code == 200 and hashlib.sha256(body).digest() == want,
              f"--anticache: HTTP {code}, {len(body)} bytes {err.strip()}")

    p13 = version_origin(env, w.pki, ssl.TLSVersion.TLSv1_3)
    p12 = version_origin(env, w.pki, ssl.TLSVersion.TLSv1_2)
    info(f"TLS 1.3-only origin on {p13}, TLS 1.2-only origin on {p12}")

    def via(m, port):
        code, body, err = curl(env, m.port, f"https://www.origin.test:{port}/v", cafile=m.ca_cert)
        return code, body.decode(errors="replace")

    step("default (tls_version_server_min TLS1_2, max UNBOUNDED): both origins, each with its "
         "own version")
    check(via(plain, p13) == (200, "TLSv1.3"), f"1.3-only origin: {via(plain, p13)}")
    check(via(plain, p12) == (200, "TLSv1.2"), f"1.2-only origin: {via(plain, p12)}")

    low = env.mitmd(args=base + ["--set", "tls_version_server_max=TLS1_2",
                                 "--set", "tls_version_client_max=TLS1_2"], name="mitmd-low")
    high = env.mitmd(args=base + ["--set", "tls_version_server_min=TLS1_3",
                                  "--set", "tls_version_client_min=TLS1_3"], name="mitmd-high")
    step("tls_version_server_max=TLS1_2: TLS 1.2 to the 1.2 origin, 502 with the reason from "
         "the 1.3-only one")
    check(via(low, p12) == (200, "TLSv1.2"), f"1.2-only origin: {via(low, p12)}")
    code, body = via(low, p13)
    info(f"1.3-only origin: HTTP {code} {body.strip()[:200]!r}")
    check(code == 502 and "tls" in body.lower(), f"1.3-only origin: HTTP {code} {body!r}")

    step("tls_version_server_min=TLS1_3: the other way round")
    check(via(high, p13) == (200, "TLSv1.3"), f"1.3-only origin: {via(high, p13)}")
    code, body = via(high, p12)
    info(f"1.2-only origin: HTTP {code} {body.strip()[:200]!r}")
    check(code == 502 and "tls" in body.lower(), f"1.2-only origin: HTTP {code} {body!r}")

    step("tls_version_client_min=TLS1_3 refuses a client that offers at most TLS 1.2; "
         "tls_version_client_max=TLS1_2 makes a TLS 1.3 client use 1.2; default: 1.3")
    ver, why = client_version(high, p13, ssl.TLSVersion.TLSv1_2)
    info(f"TLS 1.2 client to client_min=TLS1_3: {ver} {why[:120]!r}")
    check(ver is None, f"a TLS 1.2-only client was served: {ver} {why!r}")
    check(client_version(high, p13) == ("TLSv1.3", "TLSv1.3"),
          f"TLS 1.3 client: {client_version(high, p13)}")
    check(client_version(low, p12) == ("TLSv1.2", "TLSv1.2"),
          f"client_max=TLS1_2: {client_version(low, p12)}")
    check(client_version(plain, p12) == ("TLSv1.3", "TLSv1.2"),
          f"default: {client_version(plain, p12)}")

    step("bad versions: one line naming the option, exit 2")
    for args, must in ((["--set", "tls_version_client_min=TLS1_3", "--set",
                         "tls_version_client_max=TLS1_2"], "tls_version_client_min"),
                       (["--set", "tls_version_server_max=SSL3"], "tls_version_server_max"),
                       (["--set", "tls_version_server_min=TLS9"], "tls_version_server_min")):
        check_start_refused(env, args, must)
    for m in (plain, anti, low, high):
        m.check_no_crash()


if __name__ == "__main__":
    run(test, __doc__)
