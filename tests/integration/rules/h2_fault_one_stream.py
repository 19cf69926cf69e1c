#!/usr/bin/env python3
"""Over HTTP/2, inject_fault reset resets only the streams it picks (RST_STREAM
INTERNAL_ERROR): on one connection of 20 streams (h2peer client through mitmd to the h2peer origin), reset=50% leaves the other
streams complete with their bytes, and the connection is not torn down."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "h2"))
import h2lib  # noqa: E402
from harness import check, info, run, step  # noqa: E402


def test(env):
    pki = env.pki()
    org = h2lib.h2_origin(env, pki)
    m = env.mitmd(args=["--upstream-ca", pki.ca_cert, "--resolve", "*.origin.test=127.0.0.1",
                        "--set", "inject_fault=/~u bytes/50/reset"])

    step("20 streams on one connection, inject_fault reset on 50%: some reset, the rest "
         "complete with 4096 bytes each")
    rep = h2lib.h2_client(env, m, "api.origin.test", org.port, n=20, path="/bytes/4096")
    streams = rep["streams"]
    reset = [s for s in streams if s.get("reset_recv") and s.get("close_code") == 2]
    done = [s for s in streams if s.get("status") == 200 and s.get("bytes") == 4096 and
            not s.get("reset_recv")]
    info(f"{len(reset)} reset (INTERNAL_ERROR), {len(done)} complete; goaway={rep.get('goaway')}")
    check(len(reset) + len(done) == 20 and 0 < len(reset) < 20,
          f"streams {[(s.get('status'), s.get('bytes'), s.get('close_code')) for s in streams]}")
    check(not rep.get("goaway"), f"the connection got GOAWAY: {rep}")


if __name__ == "__main__":
    h2lib.take_h2peer_arg()
    run(test, __doc__)
