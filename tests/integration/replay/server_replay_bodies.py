#!/usr/bin/env python3
"""Server replay keys a request by the SHA-256 of its body whatever its framing: a body
recorded with Content-Length (HTTP/1.1) or in HTTP/2 DATA frames matches the same bytes
replayed as an HTTP/1.1 chunked body (Python http.client, curl -T -), in HTTP/2 DATA frames
with or without content-length (curl --http2), and across protocols; another body does not
(server_replay_extra answers it). The replayed answers are the recording's (their bodies are
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
    step("record: POST /sha256 with Content-Length (HTTP/1.1), POST /authority over HTTP/2")
    rec = standard_setup(env, workers=1, flows=True, extra_args=["--set", "save_bodies=64k"])
    b1 = os.urandom(3000)
    b2 = os.urandom(5000)
    f2 = env.path("b2.bin")
    with open(f2, "wb") as f:
        f.write(b2)
    s, _ = post_length(rec, "/sha256", b1)
    check(s == 200, f"record h1 POST: {s}")
    h2url = f"https://www.origin.test:{rec.nginx.h2_port}/authority"
    code, body, err = curl(env, rec.mitmd.port, h2url, cafile=rec.mitmd.ca_cert,
                           extra=["--http2", "--data-binary", "@" + f2])
    check(code == 200 and body.startswith(b"HTTP/2.0"), f"record h2 POST: {code} {body!r} {err}")
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
                              "server_replay_extra=418", "--set", "server_replay_reuse=true"],
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
    step("across protocols: the h2-recorded body replayed over HTTP/1.1, chunked")
    cp = subprocess.run(["curl", "-sS", "--http1.1", "-x", f"http://127.0.0.1:{w.mitmd.port}",
                         "--cacert", w.mitmd.ca_cert, "-X", "POST", "-T", "-",
                         "-H", "Expect:", "-w", "\n%{http_version} %{http_code}",
                         "--max-time", "20", h2url], input=b2, capture_output=True, timeout=30)
    check(cp.stdout == b"replayed-h2\n\n1.1 200",
          f"h1 chunked POST of the h2-recorded body: {cp.stdout!r} {cp.stderr!r}")
    check(origin_hits(w) == before, f"the origin saw {origin_hits(w) - before} requests")
    w.mitmd.stop()


if __name__ == "__main__":
    run(test, __doc__)
