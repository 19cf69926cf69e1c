#!/usr/bin/env python3
"""HTTP/2 counters show while the connection lives: h2load keeps one HTTP/2 connection to a
reverse listener of mitmd open for 4 s at 25 requests/s; 2 s in, while h2load still runs,
/metrics already counts at least 25 streams (mitmd_http2_streams_total) and the reverse
listener's mitmd_connections_active is 1. Then a raw HTTP/2 client (through CONNECT) opens
3 streams and resets each with RST_STREAM(CANCEL), and keeps its connection open:
mitmd_http2_resets_total is 3 before it closes (answered PING proves it is open)."""
import os
import re
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "h2"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h2lib  # noqa: E402
from harness import (_pdeathsig, check, info, run, step, stop_popen,  # noqa: E402
                     wait_until)
from opslib import METRICS_ARGS, metrics_port, scrape, total  # noqa: E402

LINE_RE = re.compile(r"^mitmd: reverse proxy to \S+ listening at 127\.0\.0\.1:(\d+)\.$", re.M)


def test(env):
    pki = env.pki()
    h2port = env.nginx(pki, {"1k": os.urandom(1024)}).h2_port
    m = env.mitmd(args=["--upstream-ca", pki.ca_cert, "--resolve", "*.origin.test=127.0.0.1",
                        "--mode", "regular@0", "--mode",
                        f"reverse:https://127.0.0.1:{h2port}@0"] + METRICS_ARGS, workers=1)
    mport = metrics_port(m)
    got = LINE_RE.search(m.stderr())
    check(got is not None, f"no reverse listener line: {m.stderr()[-600:]}")
    rport = int(got.group(1))

    step("h2load: one HTTP/2 connection, 25 requests/s for 4 s; /metrics scraped 2 s in")
    log = env.path("h2load.out")
    with open(log, "wb") as out:
        p = subprocess.Popen(["h2load", "-c", "1", "-m", "1", "--rps", "25", "-D", "4",
                              f"https://127.0.0.1:{rport}/1k"], stdout=out,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             preexec_fn=_pdeathsig)
    env.stack.callback(stop_popen, p)
    time.sleep(2.2)
    check(p.poll() is None, f"h2load ended early: {open(log).read()[-600:]}")

    def live():
        s = scrape(mport)[0]
        streams = total(s, "mitmd_http2_streams_total")
        active = s.get(("mitmd_connections_active",
                        f'{{listener="127.0.0.1:{rport}",mode="reverse"}}'))
        return (streams, active) if streams >= 25 and active == 1 else None
    got = wait_until(live, 1.2, interval=0.1)
    still = p.poll() is None
    s = scrape(mport)[0]
    info(f"2 s in: {total(s, 'mitmd_http2_streams_total'):.0f} streams counted, h2load "
         f"{'running' if still else 'done'}")
    check(got is not None and still, "HTTP/2 streams not counted while the connection is open: "
          f"{total(s, 'mitmd_http2_streams_total')} streams, active "
          f"{[(k, v) for k, v in s.items() if k[0] == 'mitmd_connections_active']}")
    rc = p.wait(15)
    text = open(log).read()
    check(rc == 0 and re.search(r"status codes: (\d+) 2xx", text), f"h2load: {text[-800:]}")
    info("h2load: " + re.search(r"requests: .*", text).group(0))

    step("a raw HTTP/2 client resets 3 streams and keeps its connection open")
    before = total(scrape(mport)[0], "mitmd_http2_resets_total")
    sock = h2lib.h2_raw_connect(m, "www.origin.test", h2port)
    out = h2lib.PREFACE + h2lib.frame(h2lib.FRAME_SETTINGS, 0, 0)
    for sid in (1, 3, 5):
        out += h2lib.frame(h2lib.FRAME_HEADERS, h2lib.FLAG_END_HEADERS | h2lib.FLAG_END_STREAM,
                           sid, h2lib.hpack_get(f"www.origin.test:{h2port}", "/1k"))
        out += h2lib.frame(h2lib.FRAME_RST_STREAM, 0, sid, struct.pack(">I", 8))  # CANCEL
    sock.sendall(out)
    try:
        got = wait_until(lambda: total(scrape(mport)[0], "mitmd_http2_resets_total") - before
                         >= 3, 5.0, interval=0.1)
        now = total(scrape(mport)[0], "mitmd_http2_resets_total") - before
        sock.sendall(h2lib.frame(h2lib.FRAME_PING, 0, 0, b"opsping!"))
        r = h2lib.FrameReader(sock)
        pong = False
        deadline = time.monotonic() + 5
        while not pong and time.monotonic() < deadline:
            f = r.next(deadline - time.monotonic())
            if f is None:
                break
            if f[0] == h2lib.FRAME_SETTINGS and not f[1] & h2lib.FLAG_ACK:
                sock.sendall(h2lib.frame(h2lib.FRAME_SETTINGS, h2lib.FLAG_ACK, 0))
            pong = f[0] == h2lib.FRAME_PING and f[1] & h2lib.FLAG_ACK and f[3] == b"opsping!"
        info(f"resets counted while open: {now:.0f}; PING answered: {pong}")
        check(got is not None and now == 3, f"{now} resets counted, expected 3")
        check(pong, "the connection was not open any more (no PING ACK)")
    finally:
        sock.close()


if __name__ == "__main__":
    run(test, __doc__)
