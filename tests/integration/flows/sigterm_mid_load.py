#!/usr/bin/env python3
"""A flow file is valid JSON Lines after SIGTERM mid-load: 20 client threads (HTTPS
keep-alive, new HTTPS connections, plain HTTP) hammer 2 workers writing one -w file; SIGTERM
after 1 s; then every line parses as a JSON object, none is partial or interleaved, and the
file ends with '\n'."""
import http.client
import json
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import TestFailure, check, info, run, standard_setup, step  # noqa: E402

THREADS = 20


def test(env):
    w = standard_setup(env, workers=2, flows=True, origin=False)
    m = w.mitmd
    tls_port = w.nginx.ports["valid"]
    stop = threading.Event()
    done = [0] * THREADS

    def hammer(i):
        kind = i % 3  # 0: HTTPS keep-alive, 1: HTTPS one request per connection, 2: plain
        conn = None
        while not stop.is_set():
            try:
                if conn is None:
                    if kind == 2:
                        conn = http.client.HTTPConnection("127.0.0.1", m.port, timeout=5)
                    else:
                        conn = m.https_conn(f"h{i}.origin.test", tls_port, timeout=5)
                url = f"http://www.origin.test:{w.nginx.plain_port}/1k" if kind == 2 else "/1k"
                conn.request("GET", url)
                r = conn.getresponse()
                r.read()
                done[i] += 1
                if kind == 1:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.01)  # the proxy is stopping: try again until told to stop
        if conn is not None:
            conn.close()

    step(f"{THREADS} client threads for 1 s, then SIGTERM to the master")
    threads = [threading.Thread(target=hammer, args=(i,), daemon=True) for i in range(THREADS)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    before = sum(done)
    os.kill(m.pid, signal.SIGTERM)
    rc = m.wait_exit(5)
    stop.set()
    for t in threads:
        t.join(10)
    info(f"{before} exchanges done before SIGTERM, {sum(done)} in all; master exit {rc}")
    check(rc == 0, f"master exit status {rc} (None = still running 5 s after SIGTERM)")
    check(before >= 20, f"only {before} exchanges in 1 s: the load did not run")

    step("every line of the flow file is one complete JSON object; the file ends with LF")
    with open(w.flows, "rb") as f:
        raw = f.read()
    check(raw, "the flow file is empty")
    check(raw.endswith(b"\n"), f"the flow file ends in a partial line: {raw[-200:]!r}")
    lines = raw.split(b"\n")[:-1]
    for n, line in enumerate(lines):
        try:
            rec = json.loads(line)
        except ValueError as e:
            raise TestFailure(f"line {n + 1} of {len(lines)} is not JSON ({e}): {line[:300]!r}")
        check(isinstance(rec, dict) and "request" in rec and "response" in rec,
              f"line {n + 1} is not a flow record: {line[:300]!r}")
    info(f"{len(lines)} records, all valid")
    check(len(lines) >= before * 0.9,
          f"{len(lines)} records for at least {before} exchanges completed before SIGTERM")


if __name__ == "__main__":
    run(test, __doc__)
