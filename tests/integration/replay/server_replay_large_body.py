#!/usr/bin/env python3
"""Server replay keys HTTP/1.1 request bodies larger than the client buffer and chunked ones
(worker/h1_held.c): a 1 MiB POST recorded with save_bodies is answered from the recording when
the same 1 MiB comes again (server_replay_extra=418 shows it is not a miss), with
Content-Length or in 4 KiB chunks, and the keep-alive connection goes on with the next
request; a different 1 MiB body is a miss (418), and with server_replay_extra=forward the
origin gets exactly its bytes (the SHA-256 the origin computes); a body larger than any
recording can hold (1 MiB + 1) is a miss without being held."""
import hashlib
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, info, read_records, run, standard_setup, step, wait_until  # noqa

MIB = 1 << 20


def exchange(conn, method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    return r.status, r.read()


def chunked_post(conn, path, body, size=4096):
    conn.putrequest("POST", path)
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    for i in range(0, len(body), size):
        part = body[i:i + size]
        conn.send(b"%x\r\n" % len(part) + part + b"\r\n")
    conn.send(b"0\r\n\r\n")
    r = conn.getresponse()
    return r.status, r.read()


def test(env):
    a, b = os.urandom(MIB), os.urandom(MIB)
    step("record: POST /sha256 with a 1 MiB body (save_bodies=1m), GET /hello")
    rec = standard_setup(env, workers=1, flows=True, extra_args=["--set", "save_bodies=1m"])
    host, port = "api.origin.test", rec.origin.port
    conn = rec.mitmd.https_conn(host, port)
    post = exchange(conn, "POST", "/sha256", a)
    hello = exchange(conn, "GET", "/hello")
    conn.close()
    check(post[0] == 200 and json.loads(post[1])["sha256"] == hashlib.sha256(a).hexdigest(),
          f"record: {post[0]} {post[1][:120]!r}")
    check(wait_until(lambda: len(read_records(rec.flows)) >= 2, 10), "records not written")
    rec.mitmd.stop()
    recording = env.path("recording.jsonl")
    shutil.copy(rec.flows, recording)
    base = ["--upstream-ca", rec.pki.ca_cert, "--resolve", "*.origin.test=127.0.0.1",
            "-S", recording, "--set", "server_replay_reuse=true"]

    step("the same 1 MiB again (Content-Length, then chunked), each followed by a GET on the "
         "same connection: answered from the recording")
    rec.mitmd = env.mitmd(args=base + ["--set", "server_replay_extra=418", "-w",
                                       env.path("replayed.jsonl")], name="extra418")
    conn = rec.mitmd.https_conn(host, port)
    s1, b1 = exchange(conn, "POST", "/sha256", a)
    info(f"POST 1 MiB: {s1} {b1[:90]!r}")
    check(s1 == 200 and b1 == post[1], f"not answered from the recording: {s1} {b1[:200]!r}")
    s2, b2 = exchange(conn, "GET", "/hello")
    check(s2 == 200 and b2 == hello[1], f"GET after it: {s2} {b2[:200]!r}")
    s3, b3 = chunked_post(conn, "/sha256", a)
    info(f"chunked POST 1 MiB in 4 KiB chunks: {s3} {b3[:90]!r}")
    check(s3 == 200 and b3 == post[1], f"chunked: {s3} {b3[:200]!r}")
    s4, b4 = exchange(conn, "GET", "/hello")
    check(s4 == 200 and b4 == hello[1], f"GET after the chunked POST: {s4} {b4[:200]!r}")

    step("another 1 MiB body: a miss (418; mitmd's own answers close the connection)")
    s5, _ = exchange(conn, "POST", "/sha256", b)
    check(s5 == 418, f"miss: {s5}")
    conn.close()

    step("a body over what a recording holds (1 MiB + 1): a miss, not held")
    big = env.path("big.bin")  # curl, which reads an early answer while it still sends
    with open(big, "wb") as f:
        f.write(a + b"x")
    cp = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-x",
                         f"http://127.0.0.1:{rec.mitmd.port}", "--cacert", rec.mitmd.ca_cert,
                         "--data-binary", f"@{big}", f"https://{host}:{port}/sha256"],
                        capture_output=True, timeout=30)
    check(cp.stdout == b"418", f"1 MiB + 1: {cp.stdout!r} {cp.stderr[-200:]!r}")
    recs = wait_until(lambda: (r := read_records(env.path("replayed.jsonl"))) and len(r) >= 6
                      and r, 10) or []
    posts = [r for r in recs if r.get("request", {}).get("method") == "POST"]
    info(f"{len(recs)} records; POST statuses {[r.get('response', {}).get('status') for r in posts]}")
    check(len(posts) == 4, f"{len(posts)} POST records")
    rec.mitmd.stop()

    step("server_replay_extra=forward: the other 1 MiB (chunked) reaches the origin byte for "
         "byte")
    rec.mitmd = env.mitmd(args=base, name="forward")
    conn = rec.mitmd.https_conn(host, port)
    s8, b8 = chunked_post(conn, "/sha256", b, size=1000)
    got = json.loads(b8) if s8 == 200 else {}
    info(f"forwarded: {s8} {got}")
    check(got.get("sha256") == hashlib.sha256(b).hexdigest() and got.get("length") == MIB,
          f"the origin got something else: {s8} {b8[:200]!r}")
    s9, b9 = exchange(conn, "POST", "/sha256", b)
    got = json.loads(b9) if s9 == 200 else {}
    check(got.get("sha256") == hashlib.sha256(b).hexdigest(), f"Content-Length: {s9} {got}")
    s10, b10 = exchange(conn, "GET", "/hello")
    check(s10 == 200 and b10 == hello[1], f"GET after the forwarded bodies: {s10}")
    conn.close()
    rec.mitmd.check_no_crash()


if __name__ == "__main__":
    run(test, __doc__)
