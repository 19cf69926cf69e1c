#!/usr/bin/env python3
"""--modify-body rewrites whole bodies up to body_size_limit over HTTP/2 and HTTP/1.1: the
response the client gets is re.sub'ed with Content-Length recomputed (from a chunked or a
sized origin response), a request body the origin receives is rewritten (its SHA-256 at the
origin), and a body larger than body_size_limit passes byte for byte with the flow line and
the -w record saying so."""
import hashlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, info, read_records, run, step, wait_until  # noqa: E402
import ruleslib  # noqa: E402


def test(env):
    small = b"hello world, " * 1000                   # 13 kB: rewritten
    big = os.urandom(100 * 1024) + b"hello world"      # over body_size_limit: untouched
    ngx, m, flows = ruleslib.setup(env, files={"small.txt": small, "big.txt": big}, extra_args=[
        "--set", "body_size_limit=64k",
        "--modify-body", "/~s & ~u \\.txt/hello (\\w+)/bye \\1!",
        "--modify-body", "/~q & ~m POST/secret/XXXXXX"])
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

    step("the flow line and the -w record say which body passed unchanged")
    out = m.stdout()
    check("modify_body: body over body_size_limit" in out, out[-2000:])
    recs = wait_until(lambda: (r := read_records(flows)) and len(r) >= 4 and r, 5) or []
    notes = [r.get("rules_note") for r in recs]
    info(f"notes {notes}")
    check(sum(1 for n in notes if n and "body_size_limit" in n) == 2, f"notes {notes}")


if __name__ == "__main__":
    run(test, __doc__)
