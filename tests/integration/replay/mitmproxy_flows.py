#!/usr/bin/env python3
"""mitmproxy's own flow files (tests/unit/data/mitmdump-8.1.1.flows, written by mitmdump 8.1.1
-w: GET, POST with a body, 404, a binary body, a refused connection, HTTPS through CONNECT):
`mitmd -n -r FILE` prints a line per flow with mitmdump's URLs and exits 0; with -w it writes
them as mitmd records, which read back the same; `-S FILE` answers the recorded requests
from it (bodies byte for byte, the origin's port closed: nothing goes upstream) and marks
them [replay]."""
import hashlib
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, curl, info, read_records, run, step, wait_until  # noqa: E402

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "unit", "data",
                       "mitmdump-8.1.1.flows")
URLS = ["GET http://127.0.0.1:18681/hello?x=1 HTTP/1.1 << 200 OK 22b",
        "POST http://127.0.0.1:18681/sha HTTP/1.1 << 201 Created 65b",
        "GET http://127.0.0.1:18681/missing HTTP/1.1 << 404 Not Found 13b",
        "GET http://127.0.0.1:18681/bin HTTP/1.1 << 200 OK 1.0k",
        "GET http://127.0.0.1:18690/closed HTTP/1.1 << error: [Errno 111] Connect call failed",
        "GET https://127.0.0.1:18443/1k HTTP/1.1 << 200 OK 1.0k",
        "GET https://127.0.0.1:18443/1k HTTP/1.1 << 200 OK 1.0k"]


def lines_of(text):
    return [ln for ln in text.splitlines() if ln.strip()]


def test(env):
    conf = env.mkdir("conf")

    def mitmd(*args):
        return env.run_cmd([env.mitmd_bin, "--confdir", conf, "-p", "0"] + list(args), timeout=30)

    step("mitmd -n -r FILE: one line per flow, mitmdump's URLs, exit 0")
    cp = mitmd("-n", "-r", FIXTURE)
    info(cp.stdout)
    got = lines_of(cp.stdout)
    check(cp.returncode == 0 and len(got) == len(URLS), f"rc {cp.returncode}: {cp.stdout}")
    for ln, want in zip(got, URLS):
        check(want in ln, f"line {ln!r} does not hold {want!r}")

    step("-w converts them to mitmd records, which read back to the same lines")
    out = env.path("converted.jsonl")
    cp = mitmd("-n", "-r", FIXTURE, "-w", out)
    recs = read_records(out)
    check(cp.returncode == 0 and len(recs) == len(URLS), f"{len(recs)} records")
    check(recs[5]["tls"]["sni"] == "www.origin.test" and
          recs[5]["request"]["url"] == "https://www.origin.test:18443/1k",
          f"the HTTPS flow's record: {recs[5]['tls']} {recs[5]['request']['url']}")
    cp2 = mitmd("-n", "-r", out)
    check(lines_of(cp2.stdout) == got, f"read back:\n{cp2.stdout}")

    step("-S FILE answers from the mitmproxy recording (the origin's port is closed)")
    m = env.mitmd(args=["-S", FIXTURE], name="replay")
    check(wait_until(lambda: "server replay: 6 responses under 5 keys" in m.stderr(), 5),
          f"start-up line: {m.stderr()[-500:]}")
    code, body, err = curl(env, m.port, "http://127.0.0.1:18681/hello?x=1")
    check(code == 200 and body == b"hello from the origin\n", f"/hello: {code} {body!r} {err}")
    code, body, err = curl(env, m.port, "http://127.0.0.1:18681/sha",
                           extra=["--data-binary", "payload bytes",
                                  "-H", "Content-Type: application/octet-stream"])
    check(code == 201 and body.strip() == hashlib.sha256(b"payload bytes").hexdigest().encode(),
          f"POST /sha: {code} {body!r}")
    code, body, err = curl(env, m.port, "http://127.0.0.1:18681/bin")
    check(code == 200 and hashlib.sha256(body).digest() ==
          hashlib.sha256(bytes(range(256)) * 4).digest(), f"/bin: {code} {len(body)} bytes")
    check(wait_until(lambda: m.stdout().count("[replay] <<") >= 3, 5),
          f"replayed lines:\n{m.stdout()}")


if __name__ == "__main__":
    run(test, __doc__)
