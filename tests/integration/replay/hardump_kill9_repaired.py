#!/usr/bin/env python3
"""A hardump cut by kill -9 (no closing brackets, a record half written) is completed by
`mitmd har FILE`: the complete entries are kept, the cut one dropped, the document closed; it
then passes the HAR 1.2 checks, and a second run leaves it as it is."""
import json
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import check, info, proc_alive, run, standard_setup, step, wait_until  # noqa
import har_schema  # noqa

N = 20


def test(env):
    har = env.path("cut.har")
    w = standard_setup(env, workers=2, extra_args=["--set", f"hardump={har}",
                                                   "--set", "save_bodies=1k"])
    step(f"{N} HTTPS requests through 2 workers, then kill -9 of the master and its workers")
    for i in range(N):
        conn = w.mitmd.https_conn("api.origin.test", w.origin.port)
        conn.request("POST" if i % 2 else "GET", f"/sha256?i={i}" if i % 2 else f"/hello?i={i}",
                     body=os.urandom(100) if i % 2 else None)
        r = conn.getresponse()
        r.read()
        check(r.status == 200, f"request {i}: {r.status}")
        conn.close()

    def entries_written():
        with open(har, "rb") as f:
            return f.read().count(b'{"startedDateTime"') >= N
    check(wait_until(entries_written, 10), "the workers did not write every HAR entry")
    workers = w.mitmd.worker_pids()
    w.mitmd.expect_worker_deaths = True
    for pid in [w.mitmd.pid] + workers:
        os.kill(pid, signal.SIGKILL)
    w.mitmd.proc.wait(5)
    check(wait_until(lambda: not any(proc_alive(p) for p in workers), 5), "workers survived")
    with open(har, "ab") as f:  # a record cut in the middle, as a dying writer may leave
        f.write(b',\n{"startedDateTime":"2026-12-02T00:00:00.000Z","time":1,"request":{"met')
    with open(har, "rb") as f:
        raw = f.read()
    try:
        json.loads(raw)
        check(False, "the cut file parses as JSON before the repair")
    except ValueError:
        pass

    step("mitmd har FILE completes it: N entries, HAR 1.2 valid")
    cp = subprocess.run([env.mitmd_bin, "har", har], capture_output=True, timeout=30)
    check(cp.returncode == 0 and f"{N} entries".encode() in cp.stderr,
          f"mitmd har: rc {cp.returncode} {cp.stderr[-300:]!r}")
    with open(har, "rb") as f:
        repaired = f.read()
    doc = json.loads(repaired)
    problems = har_schema.check_har(doc)
    check(not problems, f"HAR 1.2 check: {problems[:5]}")
    urls = sorted(e["request"]["url"].rsplit("=", 1)[1] for e in doc["log"]["entries"])
    check(urls == sorted(str(i) for i in range(N)), f"entries: {urls}")
    if har_schema.har_validator_path():
        ok, msg = har_schema.run_har_validator(har)
        check(ok, f"har-validator: {msg}")
    else:
        info("npm har-validator not installed: skipped")

    step("a second run finds the document closed and leaves it byte for byte")
    cp = subprocess.run([env.mitmd_bin, "har", har], capture_output=True, timeout=30)
    with open(har, "rb") as f:
        again = f.read()
    check(cp.returncode == 0 and again == repaired,
          f"second run: rc {cp.returncode} {cp.stderr[-200:]!r}")

    step("a file that is not HAR nor JSON Lines of flows is refused with a reason")
    junk = env.path("junk.har")
    with open(junk, "wb") as f:
        f.write(b'{"log":{"nothing":1}}')
    cp = subprocess.run([env.mitmd_bin, "har", junk], capture_output=True, timeout=30)
    check(cp.returncode == 2 and b"not a HAR file written by mitmd" in cp.stderr,
          f"junk: rc {cp.returncode} {cp.stderr!r}")


if __name__ == "__main__":
    run(test, __doc__)
