#!/usr/bin/env python3
"""SIGUSR1 right after a request counts it: the master waits for every worker's next report
(at most 1.5 s) before it logs the statistics line, instead of printing what the workers said
up to a second ago. Five rounds, each a request then SIGUSR1 at once."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, curl, info, mitmd_stats, run, standard_setup, step  # noqa: E402


def test(env):
    w = standard_setup(env, origin=False, workers=2)
    url = f"https://www.origin.test:{w.nginx.ports['valid']}/1k"
    for i in range(1, 6):
        step(f"round {i}: GET, then SIGUSR1 at once -> the line counts {i} flows")
        code, _, err = curl(env, w.mitmd.port, url, cafile=w.mitmd.ca_cert)
        check(code == 200, f"HTTP {code}: {err.strip()}")
        stats = mitmd_stats(w.mitmd)
        info(f"flows={stats.get('flows')}")
        check(stats.get("flows") == i, f"stats line after request {i}: flows={stats.get('flows')}")


if __name__ == "__main__":
    run(test, __doc__)
