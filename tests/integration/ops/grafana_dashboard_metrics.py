#!/usr/bin/env python3
"""contrib/grafana/mitmd.json is a valid Grafana dashboard over real metrics: it parses as
JSON, panel ids are unique and every panel has a grid position; every metric name its
queries use exists in a real /metrics page of mitmd (after one HTTPS request); and, where
Debian's prometheus is installed, Prometheus accepts every query (with the dashboard
variables substituted)."""
import json
import os
import re
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
from harness import check, curl, info, run, standard_setup, step, wait_until  # noqa: E402
from opslib import METRICS_ARGS, metrics_port, scrape, start_prometheus, total  # noqa: E402

DASHBOARD = os.path.join(HERE, "..", "..", "..", "contrib", "grafana", "mitmd.json")


def exprs_of(node, out):
    """exprs_of collects every "expr" string anywhere in the dashboard."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "expr" and isinstance(v, str):
                out.append(v)
            else:
                exprs_of(v, out)
    elif isinstance(node, list):
        for v in node:
            exprs_of(v, out)
    return out


def test(env):
    step("the dashboard parses; panel ids unique; every panel placed")
    with open(DASHBOARD) as f:
        dash = json.load(f)
    panels = dash["panels"]
    ids = [p["id"] for p in panels]
    check(len(ids) == len(set(ids)), f"duplicate panel ids: {ids}")
    for p in panels:
        check(all(k in p.get("gridPos", {}) for k in "xywh"), f"panel {p.get('title')}: gridPos")
    exprs = exprs_of(dash, [])
    names = sorted({n for e in exprs for n in re.findall(r"\bmitmd_[a-zA-Z0-9_]+", e)})
    info(f"{len(panels)} panels, {len(exprs)} queries, {len(names)} metric names")
    check(len(exprs) >= 20, f"only {len(exprs)} queries")

    w = standard_setup(env, origin=False, workers=2, extra_args=METRICS_ARGS)
    mport = metrics_port(w.mitmd)
    code, _, err = curl(env, w.mitmd.port, f"https://www.origin.test:{w.nginx.ports['valid']}/1k",
                        cafile=w.mitmd.ca_cert)
    check(code == 200, f"HTTP {code}: {err.strip()}")
    check(wait_until(lambda: total(scrape(mport)[0], "mitmd_requests_total") == 1, 5.0),
          "the request was not counted")

    step("every metric name of the dashboard is in a real /metrics page")
    samples, _ = scrape(mport)
    have = {n for n, _ in samples}
    missing = [n for n in names if n not in have]
    check(not missing, f"dashboard metrics missing from /metrics: {missing}")
    wanted = ["mitmd_requests_total", "mitmd_request_duration_seconds_bucket",
              "mitmd_cert_cache_hits_total", "mitmd_cert_forge_duration_seconds_bucket",
              "mitmd_worker_connections_active", "mitmd_connections_active",
              "mitmd_client_sent_bytes_total"]
    check(all(n in names for n in wanted), f"dashboard lacks one of {wanted}")

    if shutil.which("prometheus") is None:
        print("SKIP (PromQL part): the prometheus binary is missing (tests/install-deps)")
        return
    step("Prometheus accepts every query of the dashboard")
    import urllib.parse
    import urllib.request
    _, pport = start_prometheus(env, mport)

    def run_query(e):
        e = e.replace("$__rate_interval", "1m").replace("$instance", ".*")
        url = f"http://127.0.0.1:{pport}/api/v1/query?" + urllib.parse.urlencode({"query": e})
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return json.load(r)
        except urllib.error.HTTPError as he:
            return json.load(he)

    for e in exprs:
        doc = run_query(e)
        check(doc.get("status") == "success", f"prometheus refused {e!r}: {doc.get('error')}")


if __name__ == "__main__":
    run(test, __doc__)
