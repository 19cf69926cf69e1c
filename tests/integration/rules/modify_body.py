#!/usr/bin/env python3
"""--modify-body rewrites whole bodies up to body_size_limit over HTTP/2 and HTTP/1.1: the
response the client gets is re.sub'ed with Content-Length recomputed (from a chunked or a
sized origin response), a request body the origin receives is rewritten (its SHA-256 at the
origin), and a body larger than body_size_limit passes byte for byte with the flow line and
the -w record saying so."""
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "h2"))
import h2lib  # noqa: E402
from harness import check, info, read_records, run, step, wait_until  # noqa: E402
import ruleslib  # noqa: E402


def test(env):
    small = b"hello world, " * 1000                   # 13 kB: rewritten
    big = os.urandom(100 * 1024) + b"hello world"      # over body_size_limit: untouched
    ngx, m, flows = ruleslib.setup(env, files={"small.txt": small, "big.txt": big}, extra_args=[
        "--set", "body_size_limit=64k",
        "--modify-body", "/~s & ~u \\.txt/hello (\\w+)/bye \\1!",
        "--modify-body", "/~q & ~m POST/secret/XXXXXX",
        "--modify-body", "|~s & ~u chunked|chunk (\\d)|CHUNK \\1"])
    base = f"https://api.origin.test:{ngx.h2_port}"

    for h2 in (True, False):
        name = "HTTP/2" if h2 else "HTTP/1.1"
        step(f"{name}: a 13 kB response rewritten, Content-Length recomputed")
        rc, code, hdrs, body, ver, _ = ruleslib.curl(m, base + "/small.txt", http2=h2)
        want = small.replace(b"hello world", b"bye world!")
        info(f"rc={rc} HTTP/{ver} {code} {len(body)} bytes, content-length "
             f"{hdrs.get('content-length')}")
        check(code == 200 and body == want and hdrs.get("content-length") == str(len(want)),
              f"{code} {len(body)} bytes {body[:40]!r} {hdrs}")

        step(f"{name}: a 100 KiB response (over 64k) passes unchanged (SHA-256)")
        rc, code, hdrs, body, ver, _ = ruleslib.curl(m, base + "/big.txt", http2=h2)
        check(code == 200 and hashlib.sha256(body).digest() == hashlib.sha256(big).digest(),
              f"{code} {len(body)} bytes")

    step("HTTP/2 request body rewritten before the origin (h2peer POST /sha256 at the origin)")
    h2o = h2lib.h2_origin(env, ngx.pki)
    sent = b"user=alice&secret=hunter2&" * 200
    want = sent.replace(b"secret", b"XXXXXX")
    rc, code, _, body, ver, _ = ruleslib.curl(
        m, f"https://api.origin.test:{h2o.port}/sha256", extra=["--data-binary", "@-"],
        stdin=sent)
    got = json.loads(body) if code == 200 else {}
    info(f"HTTP/{ver} {code} origin got {got}")
    check(code == 200 and got.get("length") == len(want) and
          got.get("sha256") == hashlib.sha256(want).hexdigest(), f"{code} {body[:200]!r}")

    step("HTTP/1.1 request bodies rewritten before the origin (origin.py POST /sha256): "
         "sized and chunked; one over body_size_limit passes unchanged")
    org = env.origin(ngx.pki)
    url = f"https://api.origin.test:{org.port}/sha256"
    for extra in ([], ["-H", "Transfer-Encoding: chunked"]):
        rc, code, _, body, ver, _ = ruleslib.curl(m, url, http2=False, stdin=sent,
                                                  extra=["--data-binary", "@-"] + extra)
        got = json.loads(body) if code == 200 else {}
        info(f"HTTP/{ver} {code} {extra} origin got {got}")
        check(code == 200 and got.get("length") == len(want) and
              got.get("sha256") == hashlib.sha256(want).hexdigest(), f"{code} {body[:200]!r}")
    large = b"secret" * 20000  # 120 kB > 64k: sized (refused at the head) and chunked
    for extra in ([], ["-H", "Transfer-Encoding: chunked"]):  # (collected, then overflows)
        rc, code, _, body, _, _ = ruleslib.curl(m, url, http2=False, stdin=large,
                                                extra=["--data-binary", "@-"] + extra)
        got = json.loads(body) if code == 200 else {}
        check(code == 200 and got.get("sha256") == hashlib.sha256(large).hexdigest(),
              f"{extra} {code} {body[:200]!r}")

    step("HTTP/1.1 chunked response rewritten, sent with a Content-Length (origin.py /chunked)")
    rc, code, hdrs, body, _, _ = ruleslib.curl(
        m, f"https://api.origin.test:{org.port}/chunked?chunks=4&size=100", http2=False)
    want = b"".join(chunk_bytes(i, 100) for i in range(4)).replace(b"chunk ", b"CHUNK ")
    info(f"{code} {hdrs.get('content-length')} {hdrs.get('transfer-encoding')} {body[:30]!r}")
    check(code == 200 and body == want and hdrs.get("content-length") == str(len(want)) and
          "transfer-encoding" not in hdrs, f"{code} {hdrs} {body[:60]!r}")

    step("the flow line and the -w record say which body passed unchanged")
    out = m.stdout()
    check("modify_body: body over body_size_limit" in out, out[-2000:])
    recs = wait_until(lambda: (r := read_records(flows)) and len(r) >= 10 and r, 5) or []
    notes = [r.get("rules_note") for r in recs]
    info(f"notes {notes}")
    check(sum(1 for n in notes if n and "body_size_limit" in n) == 4, f"notes {notes}")


def chunk_bytes(i, size):
    """chunk_bytes is origin.py's chunk i (lib/origin.py)."""
    head = f"chunk {i}\n".encode()
    return head + b"." * max(0, size - len(head))


if __name__ == "__main__":
    h2lib.take_h2peer_arg()
    run(test, __doc__)
