#!/usr/bin/env python3
"""Connection counters by listener and mode: one mitmd (one worker, --max-conns 4) with two
listeners (`--mode regular@0 --mode socks5@0`). Four TCP connections held open on the SOCKS5
port fill the pool, so a fifth on the regular port is answered 503; /metrics then shows
mitmd_connections_active{listener=SOCKS,mode="socks5"} 4 and
mitmd_connections_refused_total{listener=REGULAR,mode="regular"} 1. After they close, 5 curl
requests through the regular port and 3 through the SOCKS5 port (200, the 1 KiB file) make
mitmd_connections_accepted_total exactly 6 and 7, the active gauges 0; after a SIGHUP reload
(new workers, counters restart in them) the totals are the same and one more request on each
port makes them 7 and 8."""
import os
import re
import signal
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import check, curl, info, run, standard_setup, step, wait_until  # noqa: E402
from opslib import METRICS_ARGS, metrics_port, scrape  # noqa: E402

LINE_RE = re.compile(r"^mitmd: (.+) listening at 127\.0\.0\.1:(\d+)\.$", re.M)


def by_listener(samples, name, key="listener"):
    """by_listener returns {(listener, mode): value} of the samples of metric `name`."""
    out = {}
    for (n, labels), v in samples.items():
        if n != name:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        out[(got.get(key), got.get("mode"))] = int(v)
    return out


def test(env):
    w = standard_setup(env, origin=False, workers=1,
                       extra_args=METRICS_ARGS + ["--max-conns", "4", "--mode", "regular@0",
                                                  "--mode", "socks5@0"])
    m = w.mitmd
    mport = metrics_port(m)
    ports = {desc: int(p) for desc, p in LINE_RE.findall(m.stderr())}
    check(len(ports) == 2, f"start-up lines: {ports}")
    p_reg, p_socks = ports["HTTP(S) proxy"], ports["SOCKS v5 proxy"]
    reg, socks = (f"127.0.0.1:{p_reg}", "regular"), (f"127.0.0.1:{p_socks}", "socks5")
    url = f"https://www.origin.test:{w.nginx.ports['valid']}/1k"

    def expect(what, name, want, timeout=5.0):
        last = {}

        def ok():
            last.clear()
            last.update(by_listener(scrape(mport)[0], name))
            return last == want
        check(wait_until(ok, timeout) is not None, f"{what}: {name} is {last}, expected {want}")
        info(f"{name}: {sorted(last.items())}")

    step("both listeners are on /metrics with zero counts")
    samples = scrape(mport)[0]
    info_ = by_listener(samples, "mitmd_listener_info", key="address")
    check(info_ == {reg: 1, socks: 1}, f"mitmd_listener_info: {info_}")
    expect("at start", "mitmd_connections_accepted_total", {reg: 0, socks: 0})

    step("4 connections held on the SOCKS5 port fill the pool; a 5th on the regular port: 503")
    held = [socket.create_connection(("127.0.0.1", p_socks), timeout=5) for _ in range(4)]
    try:
        expect("4 held", "mitmd_connections_active", {reg: 0, socks: 4})
        s = socket.create_connection(("127.0.0.1", p_reg), timeout=5)
        answer = b""
        while True:
            b = s.recv(4096)
            if not b:
                break
            answer += b
        s.close()
        check(answer.startswith(b"HTTP/1.1 503"), f"the 5th connection got {answer[:60]!r}")
        expect("after the 503", "mitmd_connections_refused_total", {reg: 1, socks: 0})
        expect("after the 503", "mitmd_connections_accepted_total", {reg: 1, socks: 4})
    finally:
        for s in held:
            s.close()
    expect("held closed", "mitmd_connections_active", {reg: 0, socks: 0})

    step("5 requests through the regular port, 3 through the SOCKS5 port")
    for i in range(8):
        extra = ["--proxy", f"socks5h://127.0.0.1:{p_socks}"] if i >= 5 else []
        code, body, err = curl(env, p_reg, url, cafile=m.ca_cert, extra=extra)
        check(code == 200 and len(body) == 1024, f"request {i}: {code} {len(body)} {err}")
    expect("after the requests", "mitmd_connections_accepted_total", {reg: 6, socks: 7})
    expect("after the requests", "mitmd_connections_refused_total", {reg: 1, socks: 0})

    step("SIGHUP: the new worker starts from zero, the totals do not go back")
    old = m.worker_pids()
    os.kill(m.pid, signal.SIGHUP)
    check(m.wait_workers(1, timeout=10, exclude=old) is not None, "no new worker after SIGHUP")
    wait_until(lambda: not (set(old) & set(m.worker_pids())), 10.0)
    expect("after SIGHUP", "mitmd_connections_accepted_total", {reg: 6, socks: 7})
    for extra in ([], ["--proxy", f"socks5h://127.0.0.1:{p_socks}"]):
        code, body, err = curl(env, p_reg, url, cafile=m.ca_cert, extra=extra)
        check(code == 200 and len(body) == 1024, f"after SIGHUP: {code} {len(body)} {err}")
    expect("after SIGHUP and 2 requests", "mitmd_connections_accepted_total",
           {reg: 7, socks: 8})
    expect("at the end", "mitmd_connections_active", {reg: 0, socks: 0})


if __name__ == "__main__":
    run(test, __doc__)
