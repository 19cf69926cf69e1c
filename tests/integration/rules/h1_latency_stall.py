#!/usr/bin/env python3
"""inject_latency and inject_fault stall act on HTTP/1.1 for real: a matching request reaches
the origin only after DELAY (a ring timer; other connections are served meanwhile), and a
stalled response is held until the idle timeout, then answered 504."""
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, info, run, step  # noqa: E402
import ruleslib  # noqa: E402


def test(env):
    ngx, m, _ = ruleslib.setup(env, extra_args=[
        "--set", "idle_timeout=2",
        "--set", "inject_latency=/~u slow/800ms",
        "--set", "inject_fault=/~u stall-me/100/stall"])
    base = f"https://api.origin.test:{ngx.h2_port}"

    step("inject_latency=/~u slow/800ms over HTTP/1.1: 200 after >= 0.8 s, while another "
         "connection is answered at once (the worker does not sleep)")
    res = {}
    t = threading.Thread(target=lambda: res.update(
        slow=ruleslib.curl(m, base + "/echo?slow", http2=False)))
    t.start()
    rc, code, _, _, _, fast = ruleslib.curl(m, base + "/echo?fast", http2=False)
    t.join()
    _, scode, _, sbody, _, took = res["slow"]
    info(f"slow: {scode} after {took:.3f} s; fast: {code} after {fast:.3f} s")
    check(scode == 200 and took >= 0.8 and ruleslib.echo_fields(sbody).get("uri") == "/echo?slow",
          f"slow {scode} after {took:.3f} s")
    check(code == 200 and fast < 0.6, f"fast {code} after {fast:.3f} s")

    step("inject_fault stall with idle_timeout=2 over HTTP/1.1: 504 after about 2 s")
    rc, code, _, body, _, took = ruleslib.curl(m, base + "/echo?stall-me", http2=False)
    info(f"{code} after {took:.2f} s: {body[:80]!r}")
    check(code == 504 and 1.8 <= took <= 4.5, f"{code} after {took:.2f} s")


if __name__ == "__main__":
    run(test, __doc__)
