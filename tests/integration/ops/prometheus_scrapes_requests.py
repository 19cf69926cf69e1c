#!/usr/bin/env python3
"""A real Prometheus (Debian's `prometheus`) scrapes mitmd's /metrics every second; after 12
HTTPS requests through mitmd, its HTTP API (/api/v1/query) reports
sum(mitmd_requests_total) == 12 and mitmd_requests_total{method="GET",status_class="2xx"} ==
12, and the scrape target is up. Skipped (exit 0 with a message) only if the prometheus
binary is missing (tests/install-deps installs it)."""
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (_pdeathsig, check, curl, free_port, info, run, standard_setup, step,  # noqa
                     stop_popen, wait_until)
from opslib import METRICS_ARGS, metrics_port  # noqa: E402

N = 12


def start_prometheus(env, target_port):
    """start_prometheus runs prometheus on a free port with a 1 s scrape of the target;
    returns (popen, api port). Retried with new ports if another test took one."""
    cfg = env.path("prometheus.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                "scrape_configs:\n  - job_name: mitmd\n    static_configs:\n"
                f"      - targets: ['127.0.0.1:{target_port}']\n")
    for attempt in range(3):
        port = free_port()
        data = env.mkdir(f"prom-data-{attempt}")
        log = env.path(f"prometheus-{attempt}.log")
        env.add_log("prometheus", log)
        with open(log, "ab") as out:
            p = subprocess.Popen(["prometheus", f"--config.file={cfg}",
                                  f"--storage.tsdb.path={data}",
                                  f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                                 stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                                 preexec_fn=_pdeathsig)
        env.stack.callback(stop_popen, p)

        def ready():
            if p.poll() is not None:
                return "exited"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1) as r:
                    return "ok" if r.status == 200 else None
            except OSError:
                return None

        got = wait_until(ready, 15.0, interval=0.1)
        if got == "ok":
            info(f"prometheus ready on 127.0.0.1:{port} (pid {p.pid})")
            return p, port
        stop_popen(p)
        info(f"prometheus did not start on port {port} ({got}); retrying")
    check(False, "prometheus did not start in 3 tries")


def query(port, expr):
    """query runs an instant query; returns the first value as a float, or None."""
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as r:
        doc = json.load(r)
    check(doc.get("status") == "success", f"query {expr}: {doc}")
    res = doc["data"]["result"]
    return float(res[0]["value"][1]) if res else None


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
