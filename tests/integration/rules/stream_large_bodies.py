#!/usr/bin/env python3
"""mitmproxy's --set stream_large_bodies=SIZE: mitmd streams every body anyway; a body over
SIZE is also never buffered for --modify-body (mitmproxy streams it past its addons), so with
stream_large_bodies=20k under the default body_size_limit (1m) a 13 kB response is rewritten
and a 40 kB one passes byte for byte, over HTTP/2 and HTTP/1.1, its flow line and -w record
naming stream_large_bodies. A value that is not a size stops start-up, exit 2."""
import hashlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (check, check_start_refused, info, read_records, run, step,  # noqa: E402
                     wait_until)
import ruleslib  # noqa: E402


def test(env):
    small = b"hello world, " * 1000                                  # 13 kB: rewritten
    mid = os.urandom(40 * 1024) + b"hello world"                     # 40 kB: streamed as is
    ngx, m, flows = ruleslib.setup(env, files={"small.txt": small, "mid.txt": mid}, extra_args=[
        "--set", "stream_large_bodies=20k", "--modify-body", "/~s/hello (\\w+)/bye \\1!"])
    base = f"https://api.origin.test:{ngx.h2_port}"
    for h2 in (True, False):
        name = "HTTP/2" if h2 else "HTTP/1.1"
        step(f"{name}: 13 kB rewritten; 40 kB (over stream_large_bodies=20k) unchanged")
        rc, code, hdrs, body, ver, _ = ruleslib.curl(m, base + "/small.txt", http2=h2)
        want = small.replace(b"hello world", b"bye world!")
        check(code == 200 and body == want, f"small: {code} {len(body)} bytes {body[:40]!r}")
        rc, code, hdrs, body, ver, _ = ruleslib.curl(m, base + "/mid.txt", http2=h2)
        info(f"mid: HTTP/{ver} {code} {len(body)} bytes")
        check(code == 200 and hashlib.sha256(body).digest() == hashlib.sha256(mid).digest(),
              f"mid: {code} {len(body)} bytes")

    step("the flow lines and the -w records name stream_large_bodies for the 40 kB bodies")
    check(m.stdout().count("modify_body: body over stream_large_bodies, passed unchanged") == 2,
          m.stdout()[-2000:])
    recs = wait_until(lambda: (r := read_records(flows)) and len(r) >= 4 and r, 5) or []
    notes = [r.get("rules_note") for r in recs]
    info(f"notes {notes}")
    check(sum(1 for n in notes if n and "stream_large_bodies" in n) == 2, f"notes {notes}")

    step("--set stream_large_bodies=lots: one line naming it, exit 2")
    check_start_refused(env, ["--set", "stream_large_bodies=lots"], "stream_large_bodies")
    m.check_no_crash()


if __name__ == "__main__":
    run(test, __doc__)
