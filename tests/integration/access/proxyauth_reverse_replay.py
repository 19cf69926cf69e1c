#!/usr/bin/env python3
"""--proxyauth on a reverse listener also guards answers from a server replay recording: a
request without (or with wrong) Authorization gets the 401, over HTTP/1.1 and HTTP/2, and
never the recorded response; with the credentials the recorded response is replayed. (Over
HTTP/2 the replay was once consulted before the 401 check, so any client got the recording.)"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from accesslib import CHALLENGE, curl_direct  # noqa: E402
from harness import check, info, read_records, run, step, wait_until  # noqa: E402

LINE_RE = re.compile(r"^mitmd: (.+?) listening at 127\.0\.0\.1:(\d+)\.$", re.M)
USER, PASS = "alice", "s3cret"



def curl(env, args, url, timeout=15):
    return curl_direct(env, args, url, timeout, noproxy="*")


def start(env, ngx, pki, extra, name):
    m = env.mitmd(args=["--upstream-ca", pki.ca_cert, "--resolve", "*.origin.test=127.0.0.1",
                        "--proxyauth", f"{USER}:{PASS}",
                        "--mode", f"reverse:https://www.origin.test:{ngx.h2_port}@0"] + extra,
                  name=name)
    ports = [int(p) for _, p in LINE_RE.findall(m.stderr())]
    check(len(ports) == 1, f"listener line: {m.stderr()[-400:]}")
    return m, ports[0]


def test(env):
    pki = env.pki()
    one_k = os.urandom(1024)
    ngx = env.nginx(pki, {"1k": one_k})
    flows = env.path("flows.jsonl")

    step("record GET /1k over HTTP/2 through the reverse listener (with credentials)")
    rec, port = start(env, ngx, pki, ["-w", flows, "--set", "save_bodies=4k"], "record")
    h2 = ["--http2", "--cacert", rec.ca_cert, "--resolve", f"www.origin.test:{port}:127.0.0.1"]
    code, ver, _, body = curl(env, h2 + ["-u", f"{USER}:{PASS}"],
                              f"https://www.origin.test:{port}/1k")
    check(code == 200 and ver == "2" and body == one_k, f"record: {code} HTTP/{ver}")
    check(wait_until(lambda: len(read_records(flows)) >= 1, 10), "no record written")
    rec.stop()

    step("replay (server_replay_reuse, extra=kill): no credentials -> 401, not the recording")
    m, port = start(env, ngx, pki, ["-S", flows, "--set", "server_replay_reuse=true",
                                    "--set", "server_replay_extra=kill"], "replay")
    url = f"https://www.origin.test:{port}/1k"
    base = ["--cacert", m.ca_cert, "--resolve", f"www.origin.test:{port}:127.0.0.1"]
    for proto in ("--http2", "--http1.1"):
        for creds in ([], ["-u", f"{USER}:nope"]):
            code, ver, heads, body = curl(env, [proto] + base + creds, url)
            info(f"{proto} {'wrong password' if creds else 'no credentials'}: {code} HTTP/{ver}")
            check(code == 401 and "www-authenticate: " + CHALLENGE.lower() in heads,
                  f"{proto} {creds}: answered {code} HTTP/{ver}, expected 401")
            check(one_k not in body, f"{proto} {creds}: the recorded body went out")

    step("with the credentials the recording answers, over HTTP/2 and HTTP/1.1")
    for proto in ("--http2", "--http1.1"):
        code, ver, _, body = curl(env, [proto] + base + ["-u", f"{USER}:{PASS}"], url)
        check(code == 200 and body == one_k, f"{proto} with credentials: {code} HTTP/{ver}")
    m.check_no_crash()


if __name__ == "__main__":
    run(test, __doc__)
