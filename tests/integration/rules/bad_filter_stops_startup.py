#!/usr/bin/env python3
"""A bad filter or rule stops start-up before any worker runs: one line pointing at the
column (`filter: ~c abc: expected a status code at column 4`), exit 2, no "listening on".
Needs the master's start-up check to call rules_check (master/preflight.c)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, info, run, step  # noqa: E402


def test(env):
    cases = [
        (["~c", "abc"], "filter: ~c abc: expected a status code at column 4"),
        (["--set", "save_stream_filter=~q &"],
         "save_stream_filter: filter: ~q &: expected an expression at column 5"),
        (["--set", "dumper_filter=(~q"], "dumper_filter: filter: (~q: unclosed '(' at column 1"),
        (["--modify-headers", "/~u [/X-A/1"],
         "modify_headers: '/~u [/X-A/1': filter: ~u [: bad regex '[': missing terminating ] "
         "for character class at column 5"),
        (["--set", "block_list=/~all/299"], "block_list: '/~all/299': invalid HTTP status code"),
        (["--set", "inject_latency=/~all/soon"], "inject_latency: '/~all/soon': expected DELAY"),
    ]
    for args, want in cases:
        step(f"mitmd {' '.join(args)} -> exit 2, one line containing {want!r}")
        cp = env.run_cmd([env.mitmd_bin, "--confdir", env.path("conf"), "-p", "0",
                          "--workers", "1"] + args, timeout=15)
        lines = [ln for ln in cp.stderr.splitlines() if ln.strip()]
        info(f"exit {cp.returncode}: {cp.stderr.strip()!r}")
        check(cp.returncode == 2, f"exited {cp.returncode}, expected 2 (stderr {cp.stderr!r})")
        check("listening on" not in cp.stderr, "it said 'listening on' first")
        check(len(lines) == 1 and want in lines[0], f"expected one line with {want!r}: {lines}")


if __name__ == "__main__":
    run(test, __doc__)
