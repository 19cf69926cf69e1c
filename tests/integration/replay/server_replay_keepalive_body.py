#!/usr/bin/env python3
"""A request answered from the server replay recording takes its body with it on a keep-alive
HTTP/1.1 connection: with server_replay_ignore_content (the body is not part of the match) a
POST answered from the recording is followed on the same connection by another request that
gets its own answer, the POST body never being read as a request (it once was: the body's
bytes became the next request head, which failed or smuggled a request of the body's
choosing). The same for a chunked POST body keyed by its payload (ignore_content off)."""
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, info, read_records, run, standard_setup, step, wait_until  # noqa


def exchange(conn, method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    return r.status, r.read()


def test(env):
    step("record: POST /sha256 (a body), GET /hello")
    rec = standard_setup(env, workers=1, flows=True, extra_args=["--set", "save_bodies=64k"])
    host, port = "api.origin.test", rec.origin.port
    conn = rec.mitmd.https_conn(host, port)
    post = exchange(conn, "POST", "/sha256", b"recorded body")
    hello = exchange(conn, "GET", "/hello")
    conn.close()
    check(post[0] == 200 and hello[0] == 200, f"record: {post[0]} {hello[0]}")
    check(wait_until(lambda: len(read_records(rec.flows)) >= 2, 10), "records not written")
    rec.mitmd.stop()
    recording = env.path("recording.jsonl")
    shutil.copy(rec.flows, recording)
    base = ["--upstream-ca", rec.pki.ca_cert, "--resolve", "*.origin.test=127.0.0.1",
            "-S", recording, "--set", "server_replay_reuse=true",
            "--set", "server_replay_extra=418"]

    step("server_replay_ignore_content: POST with another body, then GET, one connection")
    rec.mitmd = env.mitmd(args=base + ["--set", "server_replay_ignore_content=true"],
                          name="ignore_content")
    # a body that is itself a request: it must never be answered as one
    smuggled = b"GET /status?code=404 HTTP/1.1\r\nHost: api.origin.test\r\n\r\n"
    conn = rec.mitmd.https_conn(host, port)
    s1, b1 = exchange(conn, "POST", "/sha256", smuggled)
    info(f"POST: {s1} {b1[:80]!r}")
    check(s1 == 200 and b1 == post[1], f"POST not answered from the recording: {s1} {b1[:200]!r}")
    s2, b2 = exchange(conn, "GET", "/hello")
    info(f"GET after it: {s2} {b2[:80]!r}")
    check(s2 == 200 and b2 == hello[1],
          f"the GET after a replayed POST got {s2} {b2[:200]!r} (the POST body was read as a "
          "request)")
    conn.close()
    rec.mitmd.stop()

    step("body keyed (chunked): POST with the recorded body in chunks, then GET, one connection")
    rec.mitmd = env.mitmd(args=base, name="keyed")
    conn = rec.mitmd.https_conn(host, port)
    conn.putrequest("POST", "/sha256")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    conn.send(b"8\r\nrecorded\r\n5\r\n body\r\n0\r\n\r\n")
    r = conn.getresponse()
    s1, b1 = r.status, r.read()
    check(s1 == 200 and b1 == post[1], f"chunked POST: {s1} {b1[:200]!r}")
    s2, b2 = exchange(conn, "GET", "/hello")
    check(s2 == 200 and b2 == hello[1], f"GET after the chunked POST: {s2} {b2[:200]!r}")
    conn.close()
    rec.mitmd.check_no_crash()


if __name__ == "__main__":
    run(test, __doc__)
