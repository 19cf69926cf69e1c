#!/usr/bin/env python3
"""HTTP/2 over a long path, upload: curl --http2 uploads 10 MB to an h2 origin (h2peer with
a 16 MiB receive window) from 25 ms away each way over a 100 Mbit/s link (bench/delayline),
once directly and once through mitmd (the delay line sits between the client and mitmd, so
mitmd's receive window toward the client is what the path needs). Interleaved runs, median
of each: the origin's SHA-256 of every body equals ours, and mitmd's throughput is at least
--min-ratio (default 0.9) of the direct one."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lplib  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "h2"))
import h2lib  # noqa: E402
from harness import check, run, sha256_bytes, standard_setup, step  # noqa: E402

SIZE = 10 * 1024 * 1024


def upload(env, argv, answer, want):
    """upload runs one curl upload and returns its MB/s (bytes over the time from the request
    going out to the answer: connection set-up is left out)."""
    cp = env.run_cmd(argv + ["-o", answer, "-w",
                             "%{http_version} %{http_code} %{size_upload} "
                             "%{time_pretransfer} %{time_total}"], timeout=90)
    parts = cp.stdout.split()
    check(cp.returncode == 0 and len(parts) == 5 and parts[:2] == ["2", "200"],
          f"curl exited {cp.returncode}: {cp.stdout!r} {cp.stderr.strip()}")
    with open(answer) as f:
        res = json.load(f)
    check(res["length"] == SIZE and res["sha256"] == want,
          f"origin received {res['length']} bytes, SHA-256 "
          f"{'equal' if res['sha256'] == want else 'differs'}")
    return SIZE / (float(parts[4]) - float(parts[3])) / 1e6


def test(env):
    data = os.urandom(SIZE)
    want = sha256_bytes(data)
    w = standard_setup(env, origin=False)
    org = h2lib.h2_origin(env, w.pki, window=16 << 20)
    m = w.mitmd
    d_port = lplib.delay_line(env, org.port, "delayline-origin")
    p_port = lplib.delay_line(env, m.port, "delayline-mitmd")
    body = env.path("up.bin")
    with open(body, "wb") as f:
        f.write(data)
    common = ["curl", "-sS", "--http2", "--max-time", "80", "--data-binary", f"@{body}",
              "-H", "Content-Type: application/octet-stream"]
    direct = common + ["--cacert", w.pki.ca_cert, "--resolve",
                       f"www.origin.test:{d_port}:127.0.0.1",
                       f"https://www.origin.test:{d_port}/sha256"]
    proxied = common + ["-x", f"http://127.0.0.1:{p_port}", "--cacert", m.ca_cert,
                        f"https://www.origin.test:{org.port}/sha256"]

    step(f"{lplib.OPTS['runs']} x 10 MB uploads direct and through mitmd, interleaved; the "
         "origin's SHA-256 equal every time")
    lplib.compare(lambda: upload(env, direct, env.path("d.json"), want),
                  lambda: upload(env, proxied, env.path("p.json"), want))
    m.check_no_crash()


if __name__ == "__main__":
    lplib.take_args(need_h2peer=True)
    h2lib.H2PEER = os.path.abspath(lplib.OPTS["h2peer"])
    run(test, __doc__)
