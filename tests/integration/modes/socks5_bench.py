#!/usr/bin/env python3
"""mitmd-bench drives a SOCKS5 listener (`--proxy socks5h://HOST:PORT`: RFC 1928 greeting
and CONNECT with the host name, then TLS with the forged certificate), so socks5 mode can be
measured like regular mode. Through `--mode socks5@0 --mode regular@0`: 300 requests over 4
connections via SOCKS5 all succeed with the origin's bytes (mitmd-bench checks each status,
the records count them, each naming the socks5 listener); the same options pointed at the
HTTP listener fail with a clear reason instead of hanging."""
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, info, read_records, run, standard_setup, step, wait_until  # noqa: E402

N = 300


def test(env):
    w = standard_setup(env, workers=1, flows=True,
                       extra_args=["--mode", "socks5@0", "--mode", "regular@0"])
    m = w.mitmd
    lines = dict(re.findall(r"mitmd: (.+) listening at 127\.0\.0\.1:(\d+)\.", m.stderr()))
    check("SOCKS v5 proxy" in lines and "HTTP(S) proxy" in lines, f"start-up lines: {lines}")
    socks, http = lines["SOCKS v5 proxy"], lines["HTTP(S) proxy"]
    bench = os.path.join(os.path.dirname(os.path.abspath(env.mitmd_bin)), "mitmd-bench")
    port = w.nginx.ports["valid"]

    def run_bench(proxy, n):
        cp = subprocess.run([bench, "--proxy", proxy, "--connect", f"127.0.0.1:{port}",
                             "--host", "www.origin.test", "--path", "/1k", "-c", "4", "-t", "1",
                             "-n", str(n), "--timeout", "5s", "--cafile", m.ca_cert],
                            capture_output=True, text=True, timeout=60)
        return json.loads(cp.stdout.strip().splitlines()[-1]), cp

    step(f"mitmd-bench, {N} requests through the SOCKS5 listener")
    d, cp = run_bench(f"socks5h://127.0.0.1:{socks}", N)
    info(f"requests {d['requests']}, errors {d['errors']}, first error {d['first_error']!r}")
    check(d["requests"] == N and d["errors"] == 0, f"SOCKS5 run: {d}\n{cp.stderr[-500:]}")
    check(d["bytes_rx"] >= N * 1024, f"received {d['bytes_rx']} bytes for {N} x 1 KiB")
    recs = wait_until(lambda: (lambda r: r if len(r) >= N else None)(read_records(w.flows)), 5)
    check(recs, f"{len(read_records(w.flows))} records, expected {N}")
    modes = {r["client"].get("proxy_mode") for r in recs}
    statuses = {r["response"]["status"] for r in recs}
    info(f"records: {len(recs)}, proxy_mode {modes}, statuses {statuses}")
    check(modes == {"socks5@0"} and statuses == {200}, f"records: modes {modes}, {statuses}")

    step("socks5h:// pointed at the HTTP listener fails at once, saying why")
    d, _ = run_bench(f"socks5h://127.0.0.1:{http}", 4)
    info(f"first error: {d['first_error']!r}")
    check(d["requests"] == 0 and "not a SOCKS5 reply" in (d["first_error"] or ""),
          f"HTTP listener: {d}")


if __name__ == "__main__":
    run(test, __doc__)
