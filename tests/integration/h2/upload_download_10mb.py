#!/usr/bin/env python3
"""HTTP/2 bodies of 10 MB through mitmd stay intact both ways: curl --http2 downloads 10 MB
from an h2 nginx and uploads 10 MB to an h2 origin that answers the SHA-256 of what it
received; both over HTTP/2 end to end, SHA-256 equal, one HTTP/2.0 flow record each."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h2lib  # noqa: E402
from harness import check, info, run, sha256_bytes, standard_setup, step  # noqa: E402

SIZE = 10 * 1024 * 1024


def test(env):
    data = os.urandom(SIZE)
    w = standard_setup(env, files={"10m": data}, origin=False, flows=True)
    org = h2lib.h2_origin(env, w.pki)
    m = w.mitmd
    base = ["curl", "-sS", "--http2", "-x", f"http://127.0.0.1:{m.port}", "--cacert", m.ca_cert,
            "--max-time", "15", "-w", "%{http_version} %{http_code}"]

    step("curl --http2 downloads 10 MB from an h2 nginx through mitmd, SHA-256 equal")
    out = env.path("down.bin")
    cp = env.run_cmd(base + ["-o", out, f"https://www.origin.test:{w.nginx.h2_port}/10m"],
                     timeout=20)
    info(f"curl: {cp.stdout} {cp.stderr.strip()}")
    check(cp.stdout.split() == ["2", "200"], f"download: expected HTTP/2 200, got "
          f"{cp.stdout!r}; {cp.stderr.strip()}")
    with open(out, "rb") as f:
        got = f.read()
    check(len(got) == SIZE, f"download: {len(got)} bytes, expected {SIZE}")
    check(sha256_bytes(got) == sha256_bytes(data), "download: SHA-256 differs")

    step("curl --http2 uploads 10 MB to an h2 origin through mitmd; the origin's SHA-256 of "
         "the body equals ours")
    up = env.path("up.bin")
    with open(up, "wb") as f:
        f.write(data)
    answer = env.path("up.json")
    cp = env.run_cmd(base + ["-o", answer, "--data-binary", f"@{up}", "-H",
                             "Content-Type: application/octet-stream",
                             f"https://www.origin.test:{org.port}/sha256"], timeout=20)
    info(f"curl: {cp.stdout} {cp.stderr.strip()}")
    check(cp.stdout.split() == ["2", "200"], f"upload: expected HTTP/2 200, got "
          f"{cp.stdout!r}; {cp.stderr.strip()}")
    with open(answer) as f:
        res = json.load(f)
    info(f"origin says {res}")
    check(res["length"] == SIZE, f"upload: origin received {res['length']} bytes, sent {SIZE}")
    check(res["sha256"] == sha256_bytes(data), "upload: origin's SHA-256 differs from ours")
    reqs = org.events("request")
    check(len(reqs) == 1 and reqs[0]["path"] == "/sha256",
          f"origin saw requests {reqs}, expected one POST /sha256 over HTTP/2")

    step("both exchanges are HTTP/2.0 flow records with the body sizes")
    flows = h2lib.wait_flows(w.flows, 2)
    vers = [(f["request"]["httpVersion"], f["response"]["status"]) for f in flows]
    check(vers == [("HTTP/2.0", 200)] * 2, f"flow records: {vers}")
    down = [f for f in flows if f["request"]["method"] == "GET"]
    upf = [f for f in flows if f["request"]["method"] == "POST"]
    check(len(down) == 1 and down[0]["response"]["bodySize"] == SIZE,
          f"download flow bodySize: {[f['response']['bodySize'] for f in down]}")
    check(len(upf) == 1 and upf[0]["request"]["bodySize"] == SIZE,
          f"upload flow request bodySize: {[f['request']['bodySize'] for f in upf]}")


if __name__ == "__main__":
    h2lib.take_h2peer_arg()
    run(test, __doc__)
