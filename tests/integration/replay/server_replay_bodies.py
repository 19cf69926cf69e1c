#!/usr/bin/env python3
"""Server replay keys a request by the SHA-256 of its body whatever its framing: a body
recorded with Content-Length (HTTP/1.1) or in HTTP/2 DATA frames matches the same bytes
replayed as an HTTP/1.1 chunked body (Python http.client, curl -T -), in HTTP/2 DATA frames
with or without content-length (curl --http2), and across protocols; another body does not
(server_replay_extra answers it), nor does an HTTP/2 body over 1 MiB (no recording holds
one) sent without content-length. The replayed answers are the recording's (their bodies are
rewritten in the file to markers), and the Python origin sees none of these requests."""
import base64
import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, curl, read_records, run, standard_setup, step, wait_until  # noqa


def origin_hits(w):
    with open(w.origin.log) as f:
        return sum(1 for line in f if re.search(r'" \d{3} ', line))


def post_chunked(w, path, parts, host="api.origin.test"):
    """post_chunked POSTs `parts` with Transfer-Encoding: chunked (one chunk each) through
    mitmd with http.client; returns (status, body)."""
    conn = w.mitmd.https_conn(host, w.origin.port)
    conn.request("POST", path, body=iter(parts), encode_chunked=True,
                 headers={"Transfer-Encoding": "chunked"})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, data


def post_length(w, path, body, host="api.origin.test"):
    conn = w.mitmd.https_conn(host, w.origin.port)
    conn.request("POST", path, body=body)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, data


def mark(recording, marks):
    """mark rewrites the recorded response body of each (method, url suffix) in `marks` to
    the marker bytes given, so that a replayed answer cannot be mistaken for a live one."""
    out = []
    with open(recording) as f:
        for line in f:
            rec = json.loads(line)
            for (method, suffix), marker in marks.items():
                if rec.get("request", {}).get("method") == method and \
                        rec["request"].get("url", "").endswith(suffix):
                    rec["response_body"] = {"size": len(marker), "truncated": False,
                                            "base64": base64.b64encode(marker).decode()}
            out.append(json.dumps(rec))
    with open(recording, "w") as f:
        f.write("\n".join(out) + "\n")


def test(env):
    step("record: POST /sha256 and POST /authority (nginx's HTTP/2 port), both Content-Length")
    rec = standard_setup(env, workers=1, flows=True, extra_args=["--set", "save_bodies=64k"])
    b1 = os.urandom(3000)
    b2 = os.urandom(5000)
    f2 = env.path("b2.bin")
    with open(f2, "wb") as f:
        f.write(b2)
    s, _ = post_length(rec, "/sha256", b1)
    check(s == 200, f"record h1 POST: {s}")
    h2url = f"https://www.origin.test:{rec.nginx.h2_port}/authority"
    # over HTTP/1.1: nginx's `return` answers before it reads a body, and over HTTP/2 it then
    # resets the stream (NO_ERROR), which curl 7.88 reports as an error when it was still
    # sending; the key does not depend on the protocol anyway
    code, body, err = curl(env, rec.mitmd.port, h2url, cafile=rec.mitmd.ca_cert,
                           extra=["--http1.1", "--data-binary", "@" + f2])
    check(code == 200 and body.startswith(b"HTTP/1.1"), f"record POST: {code} {body!r} {err}")
    wait_until(lambda: len(read_records(rec.flows)) >= 2, 10)
    rec.mitmd.stop()
    recording = env.path("recording.jsonl")
    shutil.copy(rec.flows, recording)
    mark(recording, {("POST", "/sha256"): b"replayed-h1\n",
                     ("POST", "/authority"): b"replayed-h2\n"})

    step("replay (server_replay_extra=418): chunked HTTP/1.1 bodies match by their payload")
    w = rec
    w.mitmd = env.mitmd(args=["--upstream-ca", rec.pki.ca_cert, "--resolve",
                              "*.origin.test=127.0.0.1", "-S", recording, "--set",
                              "server_replay_extra=418", "--set", "server_replay_reuse=true",
                              "-w", env.path("replayed.jsonl")],
                        workers=1, name="replay")
    before = origin_hits(w)
    s, body = post_chunked(w, "/sha256", [b1[:1], b1[1:1000], b1[1000:]])
    check((s, body) == (200, b"replayed-h1\n"), f"chunked POST, recorded body: {s} {body!r}")
    s, body = post_chunked(w, "/sha256", [b1[:2999], b"x"])
    check(s == 418, f"chunked POST, another body: {s} {body!r}")
    s, body = post_length(w, "/sha256", b1)
    check((s, body) == (200, b"replayed-h1\n"), f"Content-Length POST: {s} {body!r}")
    # two requests on one connection: the chunked body is consumed exactly (keep-alive)
    conn = w.mitmd.https_conn("api.origin.test", w.origin.port)
    got = []
    for _ in range(2):
        conn.request("POST", "/sha256", body=iter([b1[:10], b1[10:]]), encode_chunked=True)
        r = conn.getresponse()
        got.append((r.status, r.read()))
    conn.close()
    check(got == [(200, b"replayed-h1\n")] * 2, f"two chunked POSTs on one connection: {got}")
    check(origin_hits(w) == before, f"the origin saw {origin_hits(w) - before} requests")

    step("HTTP/2 bodies (DATA frames, with and without content-length) match")
    code, body, err = curl(env, w.mitmd.port, h2url, cafile=w.mitmd.ca_cert,
                           extra=["--http2", "--data-binary", "@" + f2])
    check((code, body) == (200, b"replayed-h2\n"), f"h2 POST with length: {code} {body!r} {err}")
    cp = subprocess.run(["curl", "-sS", "--http2", "-x", f"http://127.0.0.1:{w.mitmd.port}",
                         "--cacert", w.mitmd.ca_cert, "-X", "POST", "-T", "-",
                         "-H", "Expect:", "-w", "\n%{http_version} %{http_code}",
                         "--max-time", "20", h2url], input=b2, capture_output=True, timeout=30)
    check(cp.stdout == b"replayed-h2\n\n2 200",
          f"h2 POST without content-length (curl -T -): {cp.stdout!r} {cp.stderr!r}")
    code, body, err = curl(env, w.mitmd.port, h2url, cafile=w.mitmd.ca_cert,
                           extra=["--http2", "--data-binary", "another body"])
    check(code == 418, f"h2 POST, another body: {code} {body!r}")
    cp = subprocess.run(["curl", "-sS", "--http2", "-x", f"http://127.0.0.1:{w.mitmd.port}",
                         "--cacert", w.mitmd.ca_cert, "-X", "POST", "-T", "-",
                         "-H", "Expect:", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                         "--max-time", "20", h2url], input=os.urandom(1200 * 1024),
                        capture_output=True, timeout=30)
    # mitmd answers while curl still sends, then resets the stream with NO_ERROR (RFC 9113
    # §8.1), which curl 7.88 may report as error 92: the flow record says what was answered
    big = wait_until(lambda: next((r for r in read_records(env.path("replayed.jsonl"))
                                   if r["request"].get("bodySize", 0) > 1024 * 1024), None), 10)
    check(cp.stdout == b"2 418" or (b"(92)" in cp.stderr and big is not None),
          f"h2 POST of 1.2 MiB without content-length: {cp.stdout!r} {cp.stderr[-200:]!r}")
    check(big is not None and big["response"]["status"] == 418,
          f"over 1 MiB is in no recording: server_replay_extra answered it: {big}")
    step("the body recorded with Content-Length, replayed over HTTP/1.1 chunked (curl -T -)")
    cp = subprocess.run(["curl", "-sS", "--http1.1", "-x", f"http://127.0.0.1:{w.mitmd.port}",
                         "--cacert", w.mitmd.ca_cert, "-X", "POST", "-T", "-",
                         "-H", "Expect:", "-w", "\n%{http_version} %{http_code}",
                         "--max-time", "20", h2url], input=b2, capture_output=True, timeout=30)
    check(cp.stdout == b"replayed-h2\n\n1.1 200",
          f"h1 chunked POST of the recorded body: {cp.stdout!r} {cp.stderr!r}")
    check(origin_hits(w) == before, f"the origin saw {origin_hits(w) - before} requests")
    w.mitmd.stop()


if __name__ == "__main__":
    run(test, __doc__)
