#!/usr/bin/env python3
"""HTTP/2 over a long path, download: curl --http2 downloads 10 MB from an h2 nginx that is
25 ms away each way over a 100 Mbit/s link (50 ms round trip, 12.5 MB/s: bench/delayline on
loopback; --rate 0 takes the limit off), once directly and once through mitmd (CONNECT,
mitmd's CA trusted; the delay line sits between mitmd and the origin, so mitmd's receive
window toward the origin is what the path needs). Interleaved runs, median of each: the body
is intact every time (SHA-256) and mitmd's body throughput is at least --min-ratio (default
0.9) of the direct one. A fixed 64 KiB stream window caps the proxied download at about
64 KiB per round trip (1.3 MB/s)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lplib  # noqa: E402
from harness import check, run, sha256_bytes, standard_setup, step  # noqa: E402

SIZE = 10 * 1024 * 1024


def fetch(env, argv, out, want):
    """fetch runs one curl download and returns the body's MB/s (bytes over the time from the
    request going out to the last byte: connection set-up is left out)."""
    cp = env.run_cmd(argv + ["-o", out, "-w",
                             "%{http_version} %{http_code} %{size_download} "
                             "%{time_pretransfer} %{time_total}"], timeout=90)
    parts = cp.stdout.split()
    check(cp.returncode == 0 and len(parts) == 5 and parts[:2] == ["2", "200"],
          f"curl exited {cp.returncode}: {cp.stdout!r} {cp.stderr.strip()}")
    with open(out, "rb") as f:
        got = f.read()
    check(len(got) == SIZE and sha256_bytes(got) == want,
          f"body: {len(got)} bytes, SHA-256 {'equal' if sha256_bytes(got) == want else 'differs'}")
    os.unlink(out)
    return SIZE / (float(parts[4]) - float(parts[3])) / 1e6


def test(env):
    data = os.urandom(SIZE)
    want = sha256_bytes(data)
    w = standard_setup(env, files={"10m": data}, origin=False)
    m = w.mitmd
    port = lplib.delay_line(env, w.nginx.h2_port, "delayline")
    url = f"https://www.origin.test:{port}/10m"
    common = ["curl", "-sS", "--http2", "--max-time", "80"]
    direct = common + ["--cacert", w.pki.ca_cert, "--resolve", f"www.origin.test:{port}:127.0.0.1",
                       url]
    proxied = common + ["-x", f"http://127.0.0.1:{m.port}", "--cacert", m.ca_cert, url]

    step(f"{lplib.OPTS['runs']} x 10 MB direct and through mitmd, interleaved; every body's "
         "SHA-256 equal")
    lplib.compare(lambda: fetch(env, direct, env.path("direct.bin"), want),
                  lambda: fetch(env, proxied, env.path("proxied.bin"), want))
    m.check_no_crash()


if __name__ == "__main__":
    lplib.take_args()
    run(test, __doc__)
