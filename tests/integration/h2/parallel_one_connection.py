#!/usr/bin/env python3
"""curl -Z (--parallel) with --http2 through mitmd multiplexes its requests on ONE client
connection: every flow record has httpVersion "HTTP/2.0", all share one client port, and
every body is intact."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h2lib  # noqa: E402
from harness import check, info, run, sha256_file, standard_setup, step  # noqa: E402

N = 8


def test(env):
    files = {f"p{i}": os.urandom(200000 + i) for i in range(N)}
    w = standard_setup(env, files=files, origin=False, flows=True)
    m = w.mitmd

    step(f"curl -Z --http2 fetches {N} files in parallel through mitmd")
    argv = ["curl", "-sS", "--http2", "-Z", "--parallel-max", str(N), "-x",
            f"http://127.0.0.1:{m.port}", "--cacert", m.ca_cert, "--max-time", "15",
            "-w", "%{http_version} %{http_code} %{num_connects}\\n"]
    outs = []
    for i in range(N):
        outs.append(env.path(f"p{i}.out"))
        argv += ["-o", outs[-1], f"https://www.origin.test:{w.nginx.h2_port}/p{i}"]
    cp = env.run_cmd(argv, timeout=20)
    lines = [ln.split() for ln in cp.stdout.splitlines() if ln.strip()]
    info(f"curl -w: {lines}; {cp.stderr.strip()}")
    check(len(lines) == N and all(ln[:2] == ["2", "200"] for ln in lines),
          f"expected {N} x HTTP/2 200, got {lines}; {cp.stderr.strip()}")
    for i, o in enumerate(outs):
        check(sha256_file(o) == w.nginx.files[f"p{i}"], f"p{i}: body differs")

    step("the flow records: one per request, HTTP/2.0, all on one client connection")
    flows = h2lib.wait_flows(w.flows, N)
    check(len(flows) == N, f"{len(flows)} flow records, expected {N}")
    vers = {(f["request"]["httpVersion"], f["response"]["httpVersion"]) for f in flows}
    check(vers == {("HTTP/2.0", "HTTP/2.0")}, f"httpVersion request/response: {vers}")
    ports = {f["client"]["port"] for f in flows}
    info(f"client ports in the flow records: {ports}")
    check(len(ports) == 1, f"requests came on {len(ports)} client connections {ports}, "
          "expected 1 (multiplexed)")
    paths = sorted(f["request"]["url"].rsplit("/", 1)[-1] for f in flows)
    check(paths == sorted(files), f"flow urls {paths}")


if __name__ == "__main__":
    h2lib.take_h2peer_arg()
    run(test, __doc__)
