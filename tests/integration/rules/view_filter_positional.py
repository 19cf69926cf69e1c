#!/usr/bin/env python3
"""A filter as the last arguments limits the printed flow lines and the -w records, as
mitmdump's positional filter (`mitmd ... "~c 404"`: only the 404 is printed and saved);
`--set save_stream_filter=EXPR` alone limits only -w, `--set dumper_filter=EXPR` alone only
the printed lines."""
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import read_records, check, curl, info, run, standard_setup, step, wait_until  # noqa: E402

LINE = re.compile(r"^127\.0\.0\.1:\d+: GET (\S+) HTTP/1\.1 << (\d{3})", re.M)


def records(path):
    return read_records(path)


def statuses_of(recs):
    return sorted(r["response"]["status"] for r in recs)


def fetch_three(env, m, port):
    """200, 404, 200 through mitmd `m`; returns the URLs."""
    ok = f"https://www.origin.test:{port}/1k"
    missing = f"https://www.origin.test:{port}/missing"
    for url, want in ((ok, 200), (missing, 404), (ok, 200)):
        code, _, err = curl(env, m.port, url, cafile=m.ca_cert)
        check(code == want, f"{url}: HTTP {code}, expected {want} ({err.strip()})")
    return ok, missing


def test(env):
    w = standard_setup(env, origin=False, flows=True, extra_args=["~c", "404"])
    port = w.nginx.ports["valid"]

    step('mitmd ... ~c 404 (two words, joined as mitmdump does): one flow line, the 404')
    ok, missing = fetch_three(env, w.mitmd, port)
    check(wait_until(lambda: LINE.search(w.mitmd.stdout()), 5),
          f"no flow line at all on stdout:\n{w.mitmd.stdout()}")
    time.sleep(0.3)  # the 200s came first: their lines would be there by now
    lines = LINE.findall(w.mitmd.stdout())
    info(f"flow lines: {lines}")
    check(lines == [(missing, "404")], f"expected only the 404 line, got {lines}")

    step("... and the -w file holds only the 404 record (mitmdump: the filter sets "
         "save_stream_filter too)")
    check(wait_until(lambda: records(w.flows), 5), "no record in the -w file")
    w.mitmd.stop()
    recs = records(w.flows)
    check(statuses_of(recs) == [404], f"-w statuses {statuses_of(recs)}, expected [404]")
    check(recs[0]["request"]["url"] == missing, f"-w url {recs[0]['request']['url']}")

    step("--set save_stream_filter='~c 200': every line printed, -w gets the two 200s only")
    flows2 = env.path("save.jsonl")
    m2 = env.mitmd(args=["--upstream-ca", w.pki.ca_cert, "--resolve", "*.origin.test=127.0.0.1",
                         "-w", flows2, "--set", "save_stream_filter=~c 200"], name="mitmd-save")
    fetch_three(env, m2, port)
    check(wait_until(lambda: len(LINE.findall(m2.stdout())) == 3, 5),
          f"expected 3 flow lines, got:\n{m2.stdout()}")
    m2.stop()
    check(statuses_of(records(flows2)) == [200, 200],
          f"-w statuses {statuses_of(records(flows2))}, expected [200, 200]")

    step("--set dumper_filter='!~c 200 & ~u missing': only the 404 printed, -w gets all three")
    flows3 = env.path("dump.jsonl")
    m3 = env.mitmd(args=["--upstream-ca", w.pki.ca_cert, "--resolve", "*.origin.test=127.0.0.1",
                         "-w", flows3, "--set", "dumper_filter=!~c 200 & ~u missing"],
                   name="mitmd-dump")
    fetch_three(env, m3, port)
    check(wait_until(lambda: len(records(flows3)) == 3, 5),
          f"expected 3 records, got {len(records(flows3))}")
    m3.stop()
    lines = LINE.findall(m3.stdout())
    check(lines == [(missing, "404")], f"expected only the 404 line, got {lines}")


if __name__ == "__main__":
    run(test, __doc__)
