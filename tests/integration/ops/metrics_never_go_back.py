#!/usr/bin/env python3
"""/metrics counters never go backwards: a scraper thread reads /metrics every 50 ms while
mitmd (2 workers) serves requests, reloads on SIGHUP and loses a worker to kill -9; no
counter, histogram bucket, _sum or _count of any scrape is below the previous scrape's, and
the request count stays exact (6, then 10 after the reload, then 13 after the kill), as
does the count of a modify_headers rule's applications."""
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import check, curl, info, run, standard_setup, step, wait_until  # noqa: E402
from opslib import METRICS_ARGS, metrics_port, scrape, total  # noqa: E402


def monotonic_keys(samples, types):
    """monotonic_keys picks the samples that must never decrease: counters and histograms."""
    keep = {}
    for (name, labels), v in samples.items():
        fam = name
        for suf in ("_bucket", "_sum", "_count"):
            if name.endswith(suf) and name[: -len(suf)] in types:
                fam = name[: -len(suf)]
        if types.get(fam) in ("counter", "histogram"):
            keep[(name, labels)] = v
    return keep


def test(env):
    w = standard_setup(env, origin=False, workers=2,
                       extra_args=METRICS_ARGS + ["--modify-headers", "/~q/X-Mitmd-Test/1"])
    m = w.mitmd
    m.expect_worker_deaths = True
    mport = metrics_port(m)
    url = f"https://www.origin.test:{w.nginx.ports['valid']}/1k"
    problems, scrapes, stop = [], [0], threading.Event()

    def scraper():
        prev = {}
        while not stop.is_set():
            try:
                samples, types = scrape(mport)
            except Exception as e:  # the test fails below
                problems.append(f"scrape failed: {type(e).__name__}: {e}")
                return
            cur = monotonic_keys(samples, types)
            for k, v in cur.items():
                if k in prev and v < prev[k]:
                    problems.append(f"{k[0]}{k[1]} went back from {prev[k]} to {v}")
            for k in prev:
                if k not in cur:
                    problems.append(f"{k[0]}{k[1]} disappeared")
            prev = cur
            scrapes[0] += 1
            time.sleep(0.05)

    def requests(n):
        for i in range(n):
            code, _, err = curl(env, m.port, url, cafile=m.ca_cert)
            check(code == 200, f"HTTP {code}: {err.strip()}")

    def wait_requests(n):
        got = wait_until(lambda: total(scrape(mport)[0], "mitmd_requests_total") == n, 5.0)
        check(got, f"mitmd_requests_total = {total(scrape(mport)[0], 'mitmd_requests_total')}, "
              f"want {n}")

    t = threading.Thread(target=scraper)
    t.start()
    try:
        step("6 requests: mitmd_requests_total == 6")
        requests(6)
        wait_requests(6)
        old = m.wait_workers(2)
        step("SIGHUP: workers replaced, then 4 requests: 10")
        os.kill(m.pid, signal.SIGHUP)
        check(m.wait_workers(2, timeout=8.0, exclude=old), "workers not replaced after SIGHUP")
        requests(4)
        wait_requests(10)
        s = scrape(mport)[0]
        check(s[("mitmd_reloads_total", "")] == 1, "mitmd_reloads_total is not 1")
        step("kill -9 of one worker: restarted, then 3 requests: 13")
        pids = m.worker_pids()
        os.kill(pids[0], signal.SIGKILL)
        check(m.wait_workers(2, timeout=8.0, exclude=[pids[0]]), "killed worker not restarted")
        requests(3)
        wait_requests(13)
        time.sleep(0.3)
    finally:
        stop.set()
        t.join(10)
    s = scrape(mport)[0]
    restarts = total(s, "mitmd_worker_restarts_total")
    info(f"{scrapes[0]} scrapes; worker restarts {restarts}; "
         f"accepted {total(s, 'mitmd_connections_accepted_total')}")
    check(restarts >= 3, f"mitmd_worker_restarts_total sums to {restarts}, want >= 3")
    check(total(s, "mitmd_worker_flows_total") == 13,
          f"mitmd_worker_flows_total sums to {total(s, 'mitmd_worker_flows_total')}, want 13")
    check(s[("mitmd_request_duration_seconds_count", "")] == 13, "duration histogram count")
    rules = s[("mitmd_rule_applications_total", '{rule="modify_headers"}')]
    check(rules == 13, f"mitmd_rule_applications_total{{rule=modify_headers}} = {rules}, want 13")
    check(scrapes[0] >= 20, f"only {scrapes[0]} scrapes")
    check(not problems, "counters went backwards:\n  " + "\n  ".join(problems[:10]))


if __name__ == "__main__":
    run(test, __doc__)
