#!/usr/bin/env python3
"""A real Prometheus (Debian's `prometheus`) scrapes mitmd's /metrics every second; after 12
HTTPS requests through mitmd, its HTTP API (/api/v1/query) reports
sum(mitmd_requests_total) == 12 and mitmd_requests_total{method="GET",status_class="2xx"} ==
12, and the scrape target is up. Skipped (exit 0 with a message) only if the prometheus
binary is missing (tests/install-deps installs it)."""
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import check, curl, info, run, standard_setup, step, wait_until  # noqa: E402
from opslib import METRICS_ARGS, metrics_port, prom_query as query, start_prometheus  # noqa

N = 12


def test(env):
    if shutil.which("prometheus") is None:
        print("SKIP: the prometheus binary is missing (tests/install-deps installs Debian's "
              "prometheus package)")
        return
    w = standard_setup(env, origin=False, workers=2, extra_args=METRICS_ARGS)
    mport = metrics_port(w.mitmd)
    prom, pport = start_prometheus(env, mport)

    step("Prometheus scrapes the target: up == 1")
    check(wait_until(lambda: query(pport, 'up{job="mitmd"}') == 1.0, 10.0),
          "prometheus reports the mitmd target down or not scraped")

    step(f"{N} HTTPS GETs through mitmd, all 200")
    url = f"https://www.origin.test:{w.nginx.ports['valid']}/1k"
    for i in range(N):
        code, body, err = curl(env, w.mitmd.port, url, cafile=w.mitmd.ca_cert)
        check(code == 200 and len(body) == 1024, f"request {i}: HTTP {code} {err.strip()}")

    step(f"Prometheus's API: sum(mitmd_requests_total) reaches {N}")
    t0 = time.monotonic()
    got = wait_until(lambda: (lambda v: v if v == N else None)(
        query(pport, "sum(mitmd_requests_total)")), 10.0, interval=0.25)
    last = query(pport, "sum(mitmd_requests_total)")
    check(got == N, f"prometheus says sum(mitmd_requests_total) = {last}, sent {N}")
    info(f"prometheus saw {N} requests {time.monotonic() - t0:.1f}s after the last one")
    v = query(pport, 'mitmd_requests_total{method="GET",status_class="2xx"}')
    check(v == N, f'mitmd_requests_total{{method="GET",status_class="2xx"}} = {v}, want {N}')
    v = query(pport, "mitmd_request_duration_seconds_count")
    check(v == N, f"mitmd_request_duration_seconds_count = {v}, want {N}")
    v = query(pport, "mitmd_client_sent_bytes_total")
    check(v is not None and v >= N * 1024, f"mitmd_client_sent_bytes_total = {v}, "
          f"want >= {N * 1024}")
    p50 = query(pport, "histogram_quantile(0.5, mitmd_request_duration_seconds_bucket)")
    info(f"p50 request duration per Prometheus: {p50}")
    check(p50 is not None and 0 < p50 < 5, f"p50 of the request duration: {p50}")


if __name__ == "__main__":
    run(test, __doc__)
