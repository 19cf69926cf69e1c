#!/usr/bin/env python3
"""The rules run before server replay on HTTP/2 as on HTTP/1.1: a request that block_list
matches is blocked even though the recording holds its answer, and one that it does not match
is answered from the recording. Before, HTTP/2 asked the recording first, so a blocked
request got the recorded 200 over HTTP/2 and the 403 over HTTP/1.1.

Record GET /1k and GET /authority through mitmd (nginx's HTTP/2 port), then replay them with
`--set block_list=/~u 1k/403`: curl over HTTP/2 and over HTTP/1.1 gets 403 for /1k and the
recorded /authority answer (nginx's "HTTP/2.0 ..." line, also for the HTTP/1.1 request, which
a live answer would give as "HTTP/1.1")."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, curl, info, run, standard_setup, step  # noqa: E402


def test(env):
    step("record GET /1k and GET /authority over HTTP/2")
    rec = standard_setup(env, workers=1, flows=True, origin=False,
                         extra_args=["--set", "save_bodies=64k"])
    base = f"https://www.origin.test:{rec.nginx.h2_port}"
    recorded = {}
    for path in ("/1k", "/authority"):
        code, body, err = curl(env, rec.mitmd.port, base + path, cafile=rec.mitmd.ca_cert,
                               extra=["--http2"])
        check(code == 200, f"record {path}: {code} {err}")
        recorded[path] = body
    rec.mitmd.stop()

    step("replay with block_list /~u 1k/403: HTTP/2 and HTTP/1.1 alike")
    m = env.mitmd(args=["--upstream-ca", rec.pki.ca_cert, "--resolve", "*.origin.test=127.0.0.1",
                        "-S", rec.flows, "--set", "server_replay_reuse=true",
                        "--set", "server_replay_extra=418", "--set", "block_list=/~u 1k/403"],
                  name="replay")
    for proto in ("--http2", "--http1.1"):
        code, _, err = curl(env, m.port, base + "/1k", cafile=m.ca_cert, extra=[proto])
        info(f"{proto} /1k -> {code}")
        check(code == 403, f"{proto} GET /1k answered {code}, expected 403 (block_list) {err}")
        code, body, err = curl(env, m.port, base + "/authority", cafile=m.ca_cert, extra=[proto])
        info(f"{proto} /authority -> {code} {body[:40]!r}")
        check(code == 200 and body == recorded["/authority"],
              f"{proto} GET /authority: {code} {body!r}, expected the recorded answer {err}")


if __name__ == "__main__":
    run(test, __doc__)
