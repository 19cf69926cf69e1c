#!/usr/bin/env python3
"""--set save_bodies=4k puts the request and response bodies in the -w records (base64; longer
ones cut at 4 KiB, marked truncated with their full size), over HTTP/1.1 (Content-Length,
chunked) and HTTP/2; --set hardump=FILE writes the same flows as a HAR 1.2 document, closed on
SIGTERM; `mitmd har FLOWS.jsonl` converts the recording. Both HARs pass a HAR 1.2 check written
from the spec and, when installed (tests/install-deps), npm's har-validator."""
import base64
import hashlib
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import check, curl, info, read_records, run, standard_setup, step, wait_until  # noqa
import har_schema  # noqa

LIMIT = 4096


def chunk_bytes(i, size):  # as tests/integration/lib/origin.py makes them
    head = f"chunk {i}\n".encode()
    return head + b"." * max(0, size - len(head))


def body_of(rec, side):
    b = rec.get(side + "_body")
    return None if b is None else (base64.b64decode(b["base64"]), b["size"], b["truncated"])


def by_url(recs, suffix, method=None):
    got = [r for r in recs if r["request"]["url"].endswith(suffix)
           and (method is None or r["request"]["method"] == method)]
    check(len(got) == 1, f"one record for {suffix}, got {len(got)}")
    return got[0]


def check_har_file(env, path, want_entries, label):
    doc = har_schema.load(path)  # raises on invalid JSON
    problems = har_schema.check_har(doc)
    check(not problems, f"{label}: HAR 1.2 check: {problems[:5]}")
    n = len(doc["log"]["entries"])
    check(n == want_entries, f"{label}: {n} entries, want {want_entries}")
    if har_schema.har_validator_path():
        ok, msg = har_schema.run_har_validator(path)
        check(ok, f"{label}: har-validator: {msg}")
        info(f"{label}: har-validator: {msg}")
    else:
        info(f"{label}: npm har-validator not installed in {har_schema.NPM_PREFIX} "
             "(tests/install-deps installs it when npm is present): skipped")
    return doc


def test(env):
    har = env.path("flows.har")
    w = standard_setup(env, workers=2, flows=True, files={"1k": os.urandom(1024)},
                       extra_args=["--set", f"save_bodies={LIMIT}", "--set", f"hardump={har}"])
    ca = w.mitmd.ca_cert
    px = w.mitmd.port

    step("HTTP/1.1: POST 3000 random bytes (kept whole), POST 10000 (cut at 4 KiB), chunked GET")
    small, big = os.urandom(3000), os.urandom(10000)
    replies = {}
    for name, data in (("small", small), ("big", big)):
        conn = w.mitmd.https_conn("api.origin.test", w.origin.port)
        conn.request("POST", f"/sha256?n={name}", body=data,
                     headers={"Content-Type": "application/octet-stream"})
        r = conn.getresponse()
        replies[name] = r.read()
        check(r.status == 200 and json.loads(replies[name])["sha256"] ==
              hashlib.sha256(data).hexdigest(), f"POST {name}: {r.status} {replies[name][:80]}")
        conn.close()
    conn = w.mitmd.https_conn("api.origin.test", w.origin.port)
    conn.request("GET", "/chunked?chunks=3&size=100&delay=0")
    r = conn.getresponse()
    chunked = r.read()
    check(r.status == 200 and chunked == b"".join(chunk_bytes(i, 100) for i in range(3)),
          f"chunked GET: {r.status} {len(chunked)} bytes")
    conn.close()

    step("HTTP/2: GET /1k from nginx over h2 (curl --http2)")
    code, h2body, err = curl(env, px, f"https://www.origin.test:{w.nginx.h2_port}/1k", cafile=ca,
                             extra=["--http2"])
    check(code == 200 and len(h2body) == 1024, f"h2 GET: {code} {err}")
    n_flows = 4
    recs = wait_until(lambda: (lambda rs: rs if len(rs) >= n_flows else None)(
        read_records(w.flows)), 10) or read_records(w.flows)
    check(len(recs) == n_flows, f"{len(recs)} records, want {n_flows}")

    step("the records carry the bodies: whole, cut (truncated, full size), chunked decoded, h2")
    rec = by_url(recs, "/sha256?n=small")
    got, size, trunc = body_of(rec, "request")
    check(got == small and size == 3000 and trunc is False, f"small request body: {size} {trunc}")
    got, size, trunc = body_of(rec, "response")
    check(got == replies["small"] and trunc is False, f"small response body {got[:60]!r}")
    got, size, trunc = body_of(by_url(recs, "/sha256?n=big"), "request")
    check(got == big[:LIMIT] and size == 10000 and trunc is True,
          f"big request body: kept {len(got)} of size {size}, truncated={trunc}")
    rec = by_url(recs, "/chunked?chunks=3&size=100&delay=0")
    check(body_of(rec, "request") is None, "a GET has no request_body")
    got, size, trunc = body_of(rec, "response")
    check(got == chunked and size == 300 and not trunc, f"chunked response body: {got[:40]!r}")
    rec = by_url(recs, "/1k")
    check(rec["request"]["httpVersion"] == "HTTP/2.0", f"h2 record: {rec['request']}")
    got, size, trunc = body_of(rec, "response")
    with open(os.path.join(w.nginx.root, "1k"), "rb") as f:
        check(got == f.read() and size == 1024, "h2 response body differs from the file")

    step("SIGTERM: the HAR document is closed; it passes the HAR 1.2 checks")
    w.mitmd.stop()
    doc = check_har_file(env, har, n_flows, "hardump")
    ents = {e["request"]["url"].split("/", 3)[-1]: e for e in doc["log"]["entries"]}
    e = ents["sha256?n=small"]
    check(e["request"]["postData"]["_encoding"] == "base64" and
          base64.b64decode(e["request"]["postData"]["text"]) == small, "HAR postData (binary)")
    check(e["response"]["content"]["text"] == replies["small"].decode(),
          "HAR response content text (JSON from the origin)")
    check(e["request"]["queryString"] == [{"name": "n", "value": "small"}],
          f"HAR queryString {e['request']['queryString']}")
    check(ents["sha256?n=big"]["request"]["postData"].get("_truncated") is True, "HAR _truncated")

    step("mitmd har FLOWS.jsonl > out.har converts the recording")
    out = env.path("converted.har")
    with open(out, "wb") as f:
        cp = subprocess.run([env.mitmd_bin, "har", w.flows], stdout=f, stderr=subprocess.PIPE,
                            timeout=30)
    check(cp.returncode == 0, f"mitmd har: rc {cp.returncode}: {cp.stderr[-400:]!r}")
    conv = check_har_file(env, out, n_flows, "converted")
    urls = sorted(e["request"]["url"] for e in conv["log"]["entries"])
    check(urls == sorted(e["request"]["url"] for e in doc["log"]["entries"]),
          "the converted HAR names other URLs than the hardump")
    small_conv = [e for e in conv["log"]["entries"] if e["request"]["url"].endswith("n=small")][0]
    check(base64.b64decode(small_conv["request"]["postData"]["text"]) == small,
          "converted postData differs")

    step("a line that is not a flow: named on stderr, left out, exit status 1")
    bad = env.path("bad.jsonl")
    with open(w.flows, "rb") as f, open(bad, "wb") as g:
        g.write(f.readline() + b"{\"not\": \"a flow\"}\n" + b"garbage\n")
    cp = subprocess.run([env.mitmd_bin, "har", bad], capture_output=True, timeout=30)
    check(cp.returncode == 1 and b"bad.jsonl:2" in cp.stderr and b"bad.jsonl:3" in cp.stderr,
          f"mitmd har on bad lines: rc {cp.returncode} {cp.stderr[-300:]!r}")
    check(len(json.loads(cp.stdout)["log"]["entries"]) == 1, "the good line is converted")


if __name__ == "__main__":
    run(test, __doc__)
