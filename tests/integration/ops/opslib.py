"""opslib.py - helpers of the ops tests: the master's metrics address, /metrics scraped and
parsed (Prometheus text format 0.0.4), plain HTTP requests to the metrics listener."""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (TestFailure, _pdeathsig, check, free_port, info, proc_alive,  # noqa
                     stop_popen, wait_until)

METRICS_RE = re.compile(r"metrics on http://(\S+):(\d+)/metrics")
SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')

METRICS_ARGS = ["--set", "metrics_listen=127.0.0.1:0"]


def metrics_port(m, timeout=5.0):
    """metrics_port returns the port of the master's metrics listener (from its stderr)."""
    got = wait_until(lambda: METRICS_RE.search(m.stderr()), timeout)
    if got is None:
        raise TestFailure(f"no 'metrics on' line in stderr:\n{m.stderr()}")
    return int(got.group(2))


def http_get(port, path, method="GET", timeout=5.0):
    """http_get sends one request to 127.0.0.1:port; returns (status, headers dict, body)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def raw_request(port, data, timeout=5.0):
    """raw_request sends bytes and returns everything the server answers until it closes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        while True:
            b = s.recv(65536)
            if not b:
                return out
            out += b
    finally:
        s.close()


def parse_metrics(text):
    """parse_metrics returns ({(name, labels): value}, {family: type}) and checks the text
    format: every sample's family has a TYPE line before it."""
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, fam, typ = line.split(" ", 3)
            types[fam] = typ
            continue
        if not line or line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        if m is None:
            raise TestFailure(f"/metrics line not in the text format: {line!r}")
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        fam = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
        if fam not in types:
            raise TestFailure(f"/metrics sample {name} has no TYPE line before it")
        samples[(name, labels)] = float(value)
    return samples, types


def scrape(port):
    """scrape fetches /metrics and returns parse_metrics of it."""
    status, hdrs, body = http_get(port, "/metrics")
    if status != 200:
        raise TestFailure(f"/metrics answered {status}")
    if not hdrs.get("content-type", "").startswith("text/plain; version=0.0.4"):
        raise TestFailure(f"/metrics content type {hdrs.get('content-type')!r}")
    return parse_metrics(body.decode())


def total(samples, name):
    """total sums every sample of metric `name` (all label sets)."""
    return sum(v for (n, _), v in samples.items() if n == name)


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


def prom_query(port, expr):
    """query runs an instant query; returns the first value as a float, or None."""
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as r:
        doc = json.load(r)
    check(doc.get("status") == "success", f"query {expr}: {doc}")
    res = doc["data"]["result"]
    return float(res[0]["value"][1]) if res else None


def track_new_masters(env):
    """track_new_masters returns a list for the pids of masters started by SIGUSR2 (the test
    appends each one it finds); at the test's end each still alive gets SIGTERM, then SIGKILL
    after 10 s."""
    pids = []

    def stop_them():
        for pid in pids:
            if proc_alive(pid):
                os.kill(pid, signal.SIGTERM)
                if wait_until(lambda: not proc_alive(pid), 10.0) is None:
                    os.kill(pid, signal.SIGKILL)
    env.stack.callback(stop_them)
    return pids

