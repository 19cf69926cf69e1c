#!/usr/bin/env python3
"""Measurement (not a ctest test): HTTP/2 requests/s and latency through mitmd vs direct to
the same h2 nginx origin, in one run, alternating direct / mitmd ROUNDS times. Uses the test
world (harness: nginx h2 port, 1 worker; mitmd -q with --workers W) and bench/mitmd-bench:
--h2 -c 4 -m 16 -t 2 -d 5s --warmup 1s GET /1k. Prints each mitmd-bench command line and its
JSON summary. Run with a Release build:
  python3 bench_h2.py --mitmd BUILD/mitmd --bench BUILD/mitmd-bench [--workers W] [--rounds R]
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import TestFailure, info, run, standard_setup, step  # noqa: E402

OPTS = {"--bench": None, "--workers": "1", "--rounds": "2"}


def take_args():
    for name in OPTS:
        if name in sys.argv:
            i = sys.argv.index(name)
            OPTS[name] = sys.argv[i + 1]
            del sys.argv[i:i + 2]
    if OPTS["--bench"] is None or not os.access(OPTS["--bench"], os.X_OK):
        print("FAIL: --bench BUILD/mitmd-bench is required")
        sys.exit(1)


def test(env):
    w = standard_setup(env, origin=False, workers=int(OPTS["--workers"]), extra_args=["-q"],
                       files={"1k": os.urandom(1024)})
    m = w.mitmd
    common = [OPTS["--bench"], "--connect", f"127.0.0.1:{w.nginx.h2_port}", "--host",
              "www.origin.test", "--h2", "-c", "4", "-m", "16", "-t", "2", "-d", "5s",
              "--warmup", "1s", "--path", "/1k"]
    targets = [("direct", ["--cafile", w.pki.ca_cert]),
               ("mitmd", ["--proxy", f"127.0.0.1:{m.port}", "--cafile", m.ca_cert])]
    rows = []
    for r in range(int(OPTS["--rounds"])):
        for label, extra in targets:
            step(f"round {r + 1}: {label}")
            argv = common + extra
            info("command: " + " ".join(argv))
            cp = env.run_cmd(argv, timeout=60)
            lines = [ln for ln in cp.stdout.splitlines() if ln.startswith("{")]
            if cp.returncode != 0 or not lines:
                raise TestFailure(f"mitmd-bench failed ({cp.returncode}): {cp.stderr[-800:]}")
            s = json.loads(lines[-1])
            row = {"target": label, "round": r + 1, "rps": s["rps"], "errors": s["errors"],
                   "p50_ms": round(s["latency_us"]["p50"] / 1000, 2),
                   "p99_ms": round(s["latency_us"]["p99"] / 1000, 2)}
            rows.append(row)
            print("RESULT " + json.dumps(row), flush=True)
    with open("/proc/loadavg") as f:
        info(f"load average at the end: {f.read().split()[:3]} (the machine is shared)")


if __name__ == "__main__":
    take_args()
    run(test, __doc__)
