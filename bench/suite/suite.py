#!/usr/bin/env python3
"""suite.py - runs mitmd's benchmark scenarios side by side with nginx and mitmdump.

Owns the run: a throw-away CA and origin certificate, the nginx origin, each proxy under test
(started, measured, stopped in turn), the scenario rows (mitmd-bench), the idle-connection
rows (idle_hold.py), and the result files (JSON + markdown). Called by bench/run, which
installs packages and builds first. Every process it starts is stopped by PID, also on
Ctrl-C and SIGTERM. Standard library only.
"""
import argparse
import datetime
import json
import os
import platform
import resource
import select
import shutil
import signal
import socket
import ssl
import string
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ab  # noqa: E402
import features  # noqa: E402
import h2load  # noqa: E402
import longpath  # noqa: E402
import plot  # noqa: E402
import procs  # noqa: E402
import report  # noqa: E402

BENCH_NAME = "www.bench.test"
IDLE_QUIET_S = 2.5  # idle rows: seconds of quiet after the last connection before RSS is read
RESOLVE = "*.bench.test=127.0.0.1"


LONGPATH_KEYS = [r[0] for r in longpath.ROWS]


class Scenario:
    def __init__(self, key, args, nginx_server, desc, driver="mitmd-bench", path=None,
                 per_conn=False, reverse=False, instance=None):
        self.key = key
        self.args = args  # the load generator's arguments (mitmd-bench's or h2load's)
        self.nginx_server = nginx_server  # "ka" (upstream keep-alive) or "nk" (per conn)
        self.desc = desc
        self.driver = driver  # "mitmd-bench" or "h2load"
        self.path = path  # h2load: the URL path
        self.per_conn = per_conn  # h2load: one request per connection (a counted run)
        self.reverse = reverse  # a row of the reverse phase (mitmd in reverse mode)
        # A feature row (features.py): the mitmd instance kind that runs it ("mitmd-rules",
        # "mitmd-replay"), alternating with a plain mitmd on the same load.
        self.instance = instance


SCENARIOS = [
    Scenario("h1-keepalive-1k", ["--path", "/1k", "-c", "32"], "ka",
             "HTTP/1.1 keep-alive, 32 connections, GET 1 KiB"),
    Scenario("h2-1k", ["--h2", "-c", "4", "-m", "16", "--path", "/1k"], "ka",
             "HTTP/2, 4 connections x 16 concurrent streams, GET 1 KiB"),
    Scenario("newconn-full", ["--new-conn", "-c", "16", "--path", "/1k"], "nk",
             "one request per connection, 16 at a time, client does a full TLS handshake "
             "every time (no resumption)"),
    Scenario("newconn-resume", ["--new-conn", "--resume", "-c", "16", "--path", "/1k"], "nk",
             "one request per connection, 16 at a time, client resumes its TLS session "
             "(tickets/session IDs as the server offers)"),
    Scenario("h1-keepalive-100k", ["--path", "/100k", "-c", "16"], "ka",
             "HTTP/1.1 keep-alive, 16 connections, GET 100 KiB"),
    Scenario("hosts-cold", ["--hosts", "10000000", "--host", "h%d.bench.test", "-c", "16",
                            "--path", "/1k"], "nk",
             "a new host name for every connection (h0.bench.test, h1, ...), one request "
             "each: cold certificate cache in the interceptors"),
    # Must follow hosts-cold: the same host set again, on the same instance (warm cache).
    # "--hosts" is filled in per target with the number of names hosts-cold went through.
    Scenario("hosts-warm", ["--hosts", None, "--host", "h%d.bench.test", "-c", "16",
                            "--path", "/1k"], "nk",
             "the host names hosts-cold just used (h0.bench.test .. the last one it reached), "
             "again against the same instance, one request per connection: warm "
             "certificate cache"),
]

# The reverse phase: like-for-like rows where mitmd runs in reverse mode
# (--mode reverse:https://www.bench.test:ORIGIN) so that it and nginx's reverse proxy (and the
# origin, directly) are driven by the same client on the same rows. The targets alternate in
# REVERSE_SLICES slices per row, on instances started for the phase.
H2LOAD_NEWCONN_CLIENTS = 16
REVERSE_SCENARIOS = [
    Scenario("h2load-h1-1k", ["--h1", "-c", "32"], "ka",
             "h2load, HTTP/1.1 keep-alive, 32 connections, GET 1 KiB",
             driver="h2load", path="/1k", reverse=True),
    Scenario("h2load-h2-1k", ["-c", "4", "-m", "16"], "ka",
             "h2load, HTTP/2, 4 connections x 16 concurrent streams, GET 1 KiB",
             driver="h2load", path="/1k", reverse=True),
    Scenario("h2load-newconn", ["--h1", "-c", str(H2LOAD_NEWCONN_CLIENTS), "-H",
                                "Connection: close"], "nk",
             "h2load, HTTP/1.1, one request per connection (Connection: close: the server "
             "closes, h2load reconnects), 16 at a time; h2load resumes its TLS session on "
             "every reconnect", driver="h2load", path="/1k", per_conn=True, reverse=True),
    Scenario("h2load-h1-100k", ["--h1", "-c", "16"], "ka",
             "h2load, HTTP/1.1 keep-alive, 16 connections, GET 100 KiB",
             driver="h2load", path="/100k", reverse=True),
    Scenario("rev-newconn-full", ["--new-conn", "-c", "16", "--path", "/1k"], "nk",
             "mitmd-bench to the reverse proxies, one request per connection, 16 at a time, "
             "a full TLS handshake every time (no resumption: h2load cannot do that row)",
             reverse=True),
    # Not a like-for-like row: mitmd regular (CONNECT) against mitmd reverse, same load.
    Scenario("mode-h1-1k", ["--path", "/1k", "-c", "32"], "ka",
             "mitmd-bench, HTTP/1.1 keep-alive, 32 connections, GET 1 KiB: mitmd in regular "
             "mode (CONNECT) and in reverse mode, fresh instances alternating",
             reverse=True),
]
# The feature rows (features.py): the keep-alive 1 KiB load through mitmd with the 10-rule set,
# and through mitmd answering from a recording (-S), each alternating with a plain mitmd in
# MODE_SLICES slices (their limits are on/off ratios, as the mode row's). In A/B runs they run
# on both builds' feature instances; the on/off ratio is then against h1-keepalive-1k.
FEATURE_SCENARIOS = [
    Scenario(features.RULES_SCENARIO, ["--path", "/1k", "-c", "32"], "ka",
             "HTTP/1.1 keep-alive, 32 connections, GET 1 KiB, through mitmd with a 10-rule set "
             "(block_list, map_remote, modify_headers, inject_latency/error/fault; one header "
             "edit per request, the other filters evaluated and not matching) and through "
             "plain mitmd, alternating", instance=features.RULES_KIND),
    Scenario(features.REPLAY_SCENARIO, ["--path", "/1k", "-c", "32"], "ka",
             "HTTP/1.1 keep-alive, 32 connections, GET 1 KiB, answered by mitmd from a "
             "recording (-S, made just before by mitmd -w) and by the live origin through "
             "plain mitmd, alternating", instance=features.REPLAY_KIND),
]
# The recording's load: the rows' request, a few connections, RECORD_REQUESTS requests.
RECORD = Scenario("record", ["--path", "/1k", "-c", "4"], "ka", "the server-replay recording")

REVERSE_SLICES = 2  # each target of a like-for-like row runs this many times, order reversing
MODE_SLICES = 4  # the mode row: its limit (1.10x) needs more alternations
MODE_SCENARIO = "mode-h1-1k"

# The latency row: open loop (--rate R) over HTTP/1.1 keep-alive 1 KiB, R = half of mitmd's
# (default workers) closed-loop h1-keepalive-1k req/s from the same run; measured through
# mitmd and directly at the same R after the other rows (it needs that maximum first).
LATENCY = Scenario("h1-latency-half-max", ["--path", "/1k", "-c", "32"], "ka",
                   "HTTP/1.1 keep-alive 1 KiB, 32 connections, open loop at R = half of "
                   "mitmd's h1-keepalive-1k req/s from the same run; latency from the "
                   "intended send time; through mitmd and directly at the same R")
LATENCY_SLICES = 5  # direct, mitmd and nginx alternate this many times in the latency row
HOSTS_WARM_PRIME = 1000  # names hosts-warm primes when hosts-cold did not run first

TARGETS = [
    # key, label, kind, workers (None: the program's default)
    ("direct", "origin (direct)", "direct", None),
    ("mitmd", "mitmd", "mitmd", None),
    ("mitmd-1w", "mitmd", "mitmd", 1),
    ("nginx", "nginx", "nginx", None),
    # The reference for the cores target: nginx's own CPU per request with 1 worker.
    ("nginx-1w", "nginx", "nginx", 1),
    ("mitmdump", "mitmdump", "mitmdump", None),
    # Only in the reverse phase: mitmd --mode reverse:https://www.bench.test:ORIGIN.
    ("mitmd-rev", "mitmd reverse", "mitmd-rev", None),
]


class Interrupted(Exception):
    pass


def on_signal(signum, frame):
    # Once: Ctrl-C reaches the suite twice (SIGINT from the terminal, then SIGTERM from
    # bench/run), and a second exception would cut the clean-up that the first one starts.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    raise Interrupted(signal.Signals(signum).name)


def run(argv, **kw):
    return subprocess.run(argv, check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          **kw)


def make_certs(d):
    """make_certs writes origin-ca.pem and origin.pem/.key (ECDSA P-256, names *.bench.test,
    bench.test, localhost, 127.0.0.1) into d with the openssl CLI."""
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "3", "-subj", "/CN=mitmd bench origin CA",
         "-keyout", d + "/origin-ca.key", "-out", d + "/origin-ca.pem"])
    run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-subj", "/CN=www.bench.test", "-keyout", d + "/origin.key", "-out", d + "/origin.csr"])
    with open(d + "/origin.ext", "w") as f:
        f.write("subjectAltName=DNS:*.bench.test,DNS:bench.test,DNS:localhost,IP:127.0.0.1\n"
                "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
                "keyUsage=digitalSignature\n")
    run(["openssl", "x509", "-req", "-in", d + "/origin.csr", "-CA", d + "/origin-ca.pem",
         "-CAkey", d + "/origin-ca.key", "-CAcreateserial", "-days", "3",
         "-extfile", d + "/origin.ext", "-out", d + "/origin.pem"])
    for name in ("origin-ca.pem", "origin.pem", "origin.key"):
        os.chmod(os.path.join(d, name), 0o644)


def own_cpu_seconds():
    """own_cpu_seconds returns the CPU seconds of this process and its reaped children
    (mitmd-bench runs are reaped by subprocess.run)."""
    a = resource.getrusage(resource.RUSAGE_SELF)
    b = resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def median(xs):
    """median returns the median of a non-empty list of numbers."""
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def merge_slices(rows):
    """merge_slices folds the rows of one target's latency slices into one row: sums of
    requests and errors, mean req/s, CPU and others' CPU, the largest peak RSS, and the
    median slice's latency percentiles (the slices' own p50/p99 are kept in "slices")."""
    ok = [r for r in rows if not r.get("failed") and r.get("latency_us")]
    if not ok:
        return dict(rows[-1])
    by_p99 = sorted(ok, key=lambda r: r["latency_us"]["p99"])
    out = dict(by_p99[len(by_p99) // 2])
    out["requests"] = sum(r.get("requests", 0) for r in rows)
    out["errors"] = sum(r.get("errors", 0) for r in rows)
    out["rps"] = sum(r["rps"] for r in ok) / len(ok)
    cpus = [r["cpu_s_per_1k"] for r in ok if r.get("cpu_s_per_1k") is not None]
    out["cpu_s_per_1k"] = sum(cpus) / len(cpus) if cpus else None
    out["others_cores"] = round(sum(r.get("others_cores", 0) for r in ok) / len(ok), 2)
    out["peak_rss_kib"] = max(r.get("peak_rss_kib", 0) for r in ok)
    out["latency_us"] = {k: median([r["latency_us"][k] for r in ok])
                         for k in ("p50", "p90", "p99", "max")}
    out["slices"] = [{"rps": r.get("rps"), "others_cores": r.get("others_cores"),
                      "latency_us": r.get("latency_us"), "failed": r.get("failed")}
                     for r in rows]
    failed = [r for r in rows if r.get("failed")]
    if failed:
        out["failed"] = "%d of %d slices failed: %s" % (len(failed), len(rows),
                                                        failed[0]["failed"])
    return out


def merge_pooled(rows):
    """merge_pooled folds the slices of one (scenario, target) of the reverse phase into one
    row: CPU per request pooled over the slices that succeeded (sum of CPU seconds / sum of
    requests, the origin's likewise), requests and errors summed, req/s and others' CPU the
    slices' mean, the largest peak RSS, and latency percentiles over every request of those
    slices when they kept their latencies (h2load's "_lat"), else the median slice's (by
    p99). Each slice's own figures are kept in "slices"; "failed" says how many failed."""
    ok = [r for r in rows if not r.get("failed") and r.get("requests")]
    slices = [{"rps": r.get("rps"), "cpu_s_per_1k": r.get("cpu_s_per_1k"),
               "requests": r.get("requests"), "others_cores": r.get("others_cores"),
               "latency_us": r.get("latency_us"), "failed": r.get("failed"),
               "bench": r.get("bench"), "bench_args": r.get("bench_args")} for r in rows]
    if not ok:
        out = dict(rows[-1])
    else:
        by_p99 = sorted(ok, key=lambda r: (r.get("latency_us") or {}).get("p99", 0))
        out = dict(by_p99[len(by_p99) // 2])
        reqs = sum(r["requests"] for r in ok)
        cpu = sum(r.get("cpu_s") or 0.0 for r in ok)
        out["requests"] = reqs
        out["cpu_s"] = round(cpu, 3)
        out["cpu_s_per_1k"] = cpu / reqs * 1000
        if all("origin_cpu_s" in r for r in ok):
            out["origin_cpu_s"] = round(sum(r["origin_cpu_s"] for r in ok), 3)
            out["origin_cpu_s_per_1k"] = out["origin_cpu_s"] / reqs * 1000
        out["rps"] = sum(r["rps"] for r in ok) / len(ok)
        out["others_cores"] = round(sum(r.get("others_cores") or 0.0 for r in ok) / len(ok), 2)
        out["peak_rss_kib"] = max(r.get("peak_rss_kib") or 0 for r in ok)
        if all(r.get("_lat") is not None for r in ok):
            pct = h2load.percentiles([x for r in ok for x in r["_lat"]])
            out["latency_us"] = {k: pct[k] for k in ("p50", "p90", "p99", "max")}
    out["errors"] = sum(r.get("errors") or 0 for r in rows)
    out["first_error"] = next((r.get("first_error") for r in rows if r.get("first_error")),
                              None)
    out.pop("_lat", None)
    out.pop("bench", None)
    out["bench_args"] = rows[0].get("bench_args")
    out["slices"] = slices
    failed = [r for r in rows if r.get("failed")]
    if failed and ok:
        out["failed"] = "%d of %d slices failed: %s" % (len(failed), len(rows),
                                                        failed[0]["failed"])
    return out


def settle(root, quiet=0.02, step=0.2, limit=15.0):
    """settle waits until the process tree of `root` uses less than `quiet` CPU seconds in
    `step` seconds (or `limit` seconds pass), so that one row's aftermath (closing thousands
    of connections) is not measured in the next."""
    deadline = time.monotonic() + limit
    before = procs.tree_cpu_seconds(root)
    while time.monotonic() < deadline:
        time.sleep(step)
        now = procs.tree_cpu_seconds(root)
        if now - before < quiet:
            return
        before = now


def write_conf(template, path, **values):
    with open(os.path.join(HERE, template)) as f:
        text = string.Template(f.read()).substitute(**values)
    with open(path, "w") as f:
        f.write(text)


def loadavg():
    """loadavg returns the 1-minute load average, or None."""
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def machine_info(repo):
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = 0.0
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) / 1024 / 1024
    except (OSError, ValueError, IndexError):
        pass

    def out(argv):
        try:
            return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, timeout=20).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    commit = out(["git", "-C", repo, "rev-parse", "--short=12", "HEAD"]) or "unknown"
    if out(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"]):
        commit += " (with uncommitted changes)"
    mitmdump_v = out(["mitmdump", "--version"]).splitlines()
    load = loadavg()
    return {
        "loadavg_1m_at_start": load,
        "kernel": platform.release(),
        "cpu_model": cpu,
        "cores": os.cpu_count(),
        "mem_gib": round(mem, 1),
        "python": platform.python_version(),
        "nginx": out(["nginx", "-v"]).replace("nginx version: ", ""),
        "mitmdump": mitmdump_v[0].split()[-1] if mitmdump_v else None,
    }, commit


def h2load_version():
    """h2load_version returns h2load's version ("1.52.0"), or "?"."""
    try:
        out = subprocess.run(["h2load", "--version"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return out.split("/")[-1].strip() or "?"


class Run:
    """Run holds the state of one bench run: directories, servers, options and rows."""

    def __init__(self, a):
        self.a = a
        self.quick = a.quick
        self.row_s = a.duration if a.duration is not None else (1.5 if a.quick else 5.0)
        self.warm_s = 0.3 if a.quick else 1.0
        self.idle_n = a.idle_conns if a.idle_conns is not None else (1000 if a.quick else 10000)
        self.idle_deadline = 20.0 if a.quick else 90.0
        self.dir = tempfile.mkdtemp(prefix="mitmd-bench-suite.")
        os.chmod(self.dir, 0o755)  # nginx workers run unprivileged
        self.procs = procs.Procs(self.dir)
        self.rows, self.idle, self.notes = [], [], []
        self.origin = None
        self.origin_port = None
        self.recording = None  # the server-replay row's -w file, once made

    # --- servers --------------------------------------------------------------------------

    def start_origin(self):
        d = self.dir
        os.makedirs(d + "/www")
        os.makedirs(d + "/tmp-origin")
        os.makedirs(d + "/tmp-proxy")
        with open(d + "/www/1k", "wb") as f:
            f.write(b"a" * 1024)
        with open(d + "/www/100k", "wb") as f:
            f.write(os.urandom(100 * 1024))
        for name in ("www", "www/1k", "www/100k"):
            os.chmod(os.path.join(d, name), 0o755)
        make_certs(d)
        self.origin_port = procs.free_port()
        write_conf("nginx-origin.conf.in", d + "/origin.conf", dir=d, port=self.origin_port,
                   workers="auto")
        self.origin = self.procs.start("origin", ["nginx", "-e", d + "/origin-error.log", "-p", d,
                                                  "-c", d + "/origin.conf", "-g", "daemon off;"])
        self.procs.wait_port("origin", self.origin, self.origin_port)

    def start_target(self, key, kind, workers, idle, mitmd=None):
        """start_target starts the proxy for a target; returns a dict with its process,
        CA file and ports (or the origin's, for direct). `idle`: the instance is for the
        idle row (mitmd then gets --max-conns large enough for it). `mitmd`: the binary to
        run for kind "mitmd" (default --mitmd; the A/B run passes the baseline's)."""
        d = self.dir
        if kind == "direct":
            return {"proc": self.origin, "cafile": d + "/origin-ca.pem",
                    "connect": self.origin_port, "proxy": None}
        port = procs.free_port()
        if kind in ("mitmd", "mitmd-rev") or kind in features.KINDS:
            confdir = "%s/%s-conf" % (d, key)
            argv = [mitmd or self.a.mitmd, "-p", str(port), "--confdir", confdir, "-q",
                    "--resolve", RESOLVE, "--upstream-ca", d + "/origin-ca.pem"]
            if kind == "mitmd-rev":  # every connection goes to the origin; SNI: BENCH_NAME
                argv += ["--mode", "reverse:https://%s:%d" % (BENCH_NAME, self.origin_port)]
            if idle and self.idle_n + 1024 > 4096:
                argv += ["--max-conns", str(self.idle_n + 1024)]
            if workers:
                argv += ["--workers", str(workers)]
            if kind == features.REPLAY_KIND:
                self.make_recording()
            argv += features.extra_argv(kind, self.recording)
            p, mport = self.start_mitmd(key, argv, port)
            if kind in features.KINDS or kind == "mitmd":
                return {"proc": p, "cafile": confdir + "/mitmd-ca-cert.pem",
                        "connect": self.origin_port, "proxy": port, "argv": argv, "name": key,
                        "metrics": mport}
            # mitmd-rev: the clients talk TLS to mitmd as to a server
            return {"proc": p, "cafile": confdir + "/mitmd-ca-cert.pem", "connect": port,
                    "proxy": None, "argv": argv, "name": key, "metrics": mport}
        if kind == "nginx":
            ka, nk = port, procs.free_port()
            write_conf("nginx-proxy.conf.in", d + "/nginx-proxy.conf", dir=d, ka_port=ka,
                       nk_port=nk, origin_port=self.origin_port,
                       workers=str(workers) if workers else "auto")
            p = self.procs.start(key, ["nginx", "-e", d + "/nginx-proxy-error.log", "-p", d,
                                       "-c", d + "/nginx-proxy.conf", "-g", "daemon off;"])
            self.procs.wait_port(key, p, ka)
            self.procs.wait_port(key, p, nk)
            return {"proc": p, "cafile": d + "/origin-ca.pem", "ka": ka, "nk": nk,
                    "proxy": None}
        if kind == "mitmdump":
            confdir = "%s/%s-conf" % (d, key)
            os.makedirs(confdir, exist_ok=True)
            env = dict(os.environ, MITMD_BENCH_RESOLVE=RESOLVE)
            argv = ["mitmdump", "-q", "--listen-host", "127.0.0.1", "--listen-port", str(port),
                    "--set", "confdir=" + confdir,
                    "--set", "ssl_verify_upstream_trusted_ca=" + d + "/origin-ca.pem",
                    "-s", os.path.join(HERE, "mitmdump_resolve.py")]
            p = self.procs.start(key, argv, env=env)
            self.procs.wait_port(key, p, port, timeout=60)
            return {"proc": p, "cafile": confdir + "/mitmproxy-ca-cert.pem",
                    "connect": self.origin_port, "proxy": port, "argv": argv}
        raise ValueError(kind)

    def start_mitmd(self, key, argv, port):
        """start_mitmd starts mitmd (argv) as `key` with metrics on (--set
        metrics_listen=127.0.0.1:FREE, so that every row measures mitmd with its metrics
        endpoint open, as it runs in production; issue 13) and waits for its proxy port and
        its metrics port. A build that does not know metrics_listen (an old baseline) is
        started again without it, once, and the run's notes say so. Returns (Popen, metrics
        port or None)."""
        mport = procs.free_port()
        full = argv + ["--set", "metrics_listen=127.0.0.1:%d" % mport]
        p = self.procs.start(key, full)
        try:
            self.procs.wait_port(key, p, port)
            self.procs.wait_port(key, p, mport)
        except RuntimeError as e:
            if "metrics_listen" not in str(e) or p.poll() is None:
                raise
            note = "%s runs without metrics: %s does not know metrics_listen." % (key, argv[0])
            if note not in self.notes:
                self.notes.append(note)
            p = self.procs.start(key, argv)
            self.procs.wait_port(key, p, port)
            return p, None
        argv[:] = full
        return p, mport

    def make_recording(self):
        """make_recording records the server-replay row's answers once per run: a mitmd
        (the candidate's, --mitmd) with -w and save_bodies, RECORD_REQUESTS requests of the
        row's kind through it, then stopped (SIGTERM: the file is complete). Sets
        self.recording; raises RuntimeError when the file holds no record."""
        if self.recording is not None:
            return
        d = self.dir
        path = d + "/replay-recording.jsonl"
        port = procs.free_port()
        confdir = d + "/replay-record-conf"
        argv = [self.a.mitmd, "-p", str(port), "--confdir", confdir, "-q", "--resolve",
                RESOLVE, "--upstream-ca", d + "/origin-ca.pem", "-w", path,
                "--set", "save_bodies=4k"]
        p = self.procs.start("replay-record", argv)
        try:
            self.procs.wait_port("replay-record", p, port)
            t = {"proc": p, "cafile": confdir + "/mitmd-ca-cert.pem",
                 "connect": self.origin_port, "proxy": port}
            s, out = self.run_bench(self.bench_argv(t, RECORD, 30.0, d + "/record.json", False,
                                                    requests=features.RECORD_REQUESTS), 30.0)
        finally:
            self.procs.stop(p)
        n = features.count_records(path)
        if s is None or n == 0:
            raise RuntimeError("the server-replay recording has no record (%d requests: %s)"
                               % ((s or {}).get("requests", 0), out[-200:]))
        self.recording = path
        self.notes.append("server-replay: answered from a recording of %d requests (GET /1k "
                          "through mitmd -w --set save_bodies=4k, made at the start of the "
                          "row), with -S FILE --set server_replay_reuse=true --set "
                          "server_replay_extra=404; the live side is plain mitmd to the "
                          "origin." % n)

    # --- rows -----------------------------------------------------------------------------

    def bench_argv(self, t, sc, seconds, json_path, warm, hosts=None, requests=None):
        """bench_argv builds a mitmd-bench command line for target t and scenario sc:
        `seconds` long (at most, with `requests`: stop after that many), `hosts` fills
        the scenario's open --hosts count (hosts-warm), `warm`: this is the warm-up run,
        which for hosts-cold uses other names (w0.bench.test, ...) so that the measured run
        stays cold."""
        args = list(sc.args)
        if None in args:
            args[args.index(None)] = str(hosts)
        if "--host" not in args:
            args += ["--host", BENCH_NAME]
        if warm and sc.key == "hosts-cold":
            args[args.index("--host") + 1] = "w%d.bench.test"
        argv = [self.a.bench, "-d", "%gs" % seconds, "-t", "2", "--cafile", t["cafile"],
                "--json", json_path] + args
        if requests is not None:
            argv += ["-n", str(requests)]
        if t["proxy"] is not None:
            argv += ["--connect", "127.0.0.1:%d" % t["connect"],
                     "--proxy", "127.0.0.1:%d" % t["proxy"]]
        elif "ka" in t:
            argv += ["--connect", "127.0.0.1:%d" % t[sc.nginx_server]]
        else:
            argv += ["--connect", "127.0.0.1:%d" % t["connect"]]
        return argv

    def run_bench(self, argv, seconds, at=None):
        """run_bench runs mitmd-bench; returns (summary dict or None, output tail). With
        at=(delay, fn), fn(pid of mitmd-bench) is called `delay` seconds after it started (the
        end of its in-process --warmup: where the measured window begins)."""
        json_path = argv[argv.index("--json") + 1]
        if os.path.exists(json_path):
            os.unlink(json_path)
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            if at is not None:
                time.sleep(at[0])
                at[1](p.pid)
            out = p.communicate(timeout=seconds + 30)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            p.kill()
            out = p.communicate()[0].decode(errors="replace")
            return None, "mitmd-bench timed out: %s" % out[-300:]
        try:
            with open(json_path) as f:
                return json.load(f), out
        except (OSError, ValueError):
            return None, "mitmd-bench exit %d: %s" % (p.returncode, out.strip()[-300:])

    def hosts_warm_count(self, key):
        """hosts_warm_count returns how many names (h0 ..) hosts-warm goes through for
        target `key`: as many as hosts-cold last completed on it (an A/B run has one
        hosts-cold row per round), or HOSTS_WARM_PRIME."""
        cold = next((r for r in reversed(self.rows) if r["scenario"] == "hosts-cold" and
                     r["target"] == key and r.get("requests") and not r.get("failed")), None)
        return max(16, cold["requests"]) if cold else HOSTS_WARM_PRIME

    def load_row(self, key, label, kind, t, sc, seconds=None, warm_inside=False):
        """load_row measures scenario sc on target t (a warm-up, then `seconds`, by default
        the row length) and returns the row dict. warm_inside: the warm-up is mitmd-bench's
        own --warmup, on the connections the measured run then uses (so that their set-up
        is not in the measured latency); otherwise a separate mitmd-bench run before."""
        root = t["proc"].pid
        seconds = seconds if seconds is not None else self.row_s
        how = {"direct": "direct TLS", "mitmd": "CONNECT", "mitmdump": "CONNECT",
               "mitmd-rev": "reverse mode, TLS to mitmd, an upstream TLS conn per client "
                            "conn",
               features.RULES_KIND: "CONNECT, 10 rules",
               features.REPLAY_KIND: "CONNECT, answered from a recording (-S)"}.get(kind)
        h2 = "--h2" in sc.args or (sc.driver == "h2load" and "--h1" not in sc.args)
        if kind == "nginx":
            how = ("reverse proxy, upstream keep-alive" if sc.nginx_server == "ka" else
                   "reverse proxy, new upstream TLS conn per client conn")
            if h2:
                how += " (HTTP/1.1 upstream)"
        elif kind == "mitmd-rev" and h2:
            how += " (HTTP/2 upstream)"
        if sc.reverse:
            how = "%s: %s" % (sc.driver, how)
        row = {"scenario": sc.key, "target": key, "target_label": label, "how": how,
               "bench_args": None, "requests": 0}
        if sc.driver == "h2load":
            return self.h2load_row(row, t, sc, seconds)
        jpath = "%s/%s-%s.json" % (self.dir, key, sc.key)
        hosts = None
        if sc.key == "hosts-warm":
            # The warm-up goes once through exactly the names the measured run uses
            # (h0 .. h<hosts-1>), so every one of them is in the cache even where
            # hosts-cold's two generator threads left a gap; then the measured run
            # cycles through them again.
            hosts = self.hosts_warm_count(key)
            row["hosts"] = hosts
            row["how"] += "; the %s names h0.. again" % format(hosts, ",")
            self.run_bench(self.bench_argv(t, sc, 120.0, jpath + ".warm", True, hosts, hosts),
                           120.0)
        elif not warm_inside:
            self.run_bench(self.bench_argv(t, sc, self.warm_s, jpath + ".warm", True),
                           self.warm_s)
        argv = self.bench_argv(t, sc, seconds, jpath, False, hosts)
        if warm_inside:
            argv += ["--warmup", "%gs" % self.warm_s]
        row["bench_args"] = " ".join(argv[1:])
        if warm_inside:
            return self.measure(row, t, sc, lambda at: self.run_bench(
                argv, seconds + self.warm_s, at=at), self.warm_s)
        return self.measure(row, t, sc, lambda at: self.run_bench(argv, seconds), None)

    def measure(self, row, t, sc, run, warm_s):
        """measure runs the load generator (run(at) returns (summary or None, output
        tail), calling at[1](its pid) at[0] seconds after it started when `at` is given)
        and fills `row` with its figures and the CPU, memory and others' CPU of the
        measured window: from warm_s seconds after the start (the end of an in-process
        warm-up) when warm_s is given, else from the start, to the end of the run."""
        root = t["proc"].pid
        kind_direct = t["proc"] is self.origin
        at_start = {}

        def sample_start(bench_pid=None):
            # A running mitmd-bench is not in own_cpu_seconds() until it is reaped: count
            # what its warm-up used now, so that only the measured window is "ours".
            procs.reset_peak_rss(root)
            at_start.update(cpu0=procs.tree_cpu_seconds(root),
                            ocpu0=procs.tree_cpu_seconds(self.origin.pid),
                            own0=own_cpu_seconds() + (procs.tree_cpu_seconds(bench_pid)
                                                      if bench_pid else 0.0),
                            sys0=procs.system_busy_seconds(), t0=time.monotonic())
        if warm_s is not None:
            s, out = run((warm_s, sample_start))
        else:
            sample_start()
            s, out = run(None)
        if not at_start:  # mitmd-bench ended before its warm-up did
            sample_start()
        cpu0, ocpu0, own0, sys0, t0 = (at_start[k] for k in ("cpu0", "ocpu0", "own0", "sys0",
                                                               "t0"))
        own1, sys1, t1 = own_cpu_seconds(), procs.system_busy_seconds(), time.monotonic()
        cpu1 = procs.tree_cpu_seconds(root)
        ocpu1 = procs.tree_cpu_seconds(self.origin.pid)
        # CPU that neither the target, the origin, the load generator nor the suite used:
        # other work on the machine, in cores; req/s are only comparable when it is small.
        ours = (own1 - own0) + (ocpu1 - ocpu0) + ((cpu1 - cpu0) if not kind_direct else 0)
        row["others_cores"] = round(max(0.0, (sys1 - sys0) - ours) / (t1 - t0), 2)
        row["peak_rss_kib"] = procs.tree_kib(root, "VmHWM")
        row["cpu_s"] = round(cpu1 - cpu0, 3)
        if s is None:
            row["failed"] = out
            row["rps"] = None
            return row
        if "_lat" in s:  # h2load: every latency, for merging slices (not written out)
            row["_lat"] = s.pop("_lat")
        row["bench"] = s
        row["requests"] = s["requests"]
        row["errors"] = s["errors"]
        row["first_error"] = s["first_error"]
        row["rps"] = s["rps"]
        row["latency_us"] = {k: s["latency_us"][k] for k in ("p50", "p90", "p99", "max")}
        row["protocol"] = s.get("protocol")
        if "--resume" in sc.args and s.get("handshakes"):
            # Say how often the client actually resumed: a target may not offer it, or
            # (several processes) not recognise another process's tickets.
            row["resumed_pct"] = 100.0 * s["resumed"] / s["handshakes"]
            row["how"] += "; %.0f%% of handshakes resumed" % row["resumed_pct"]
        n = s["requests"]
        row["cpu_s_per_1k"] = (cpu1 - cpu0) / n * 1000 if n else None
        if not kind_direct:
            row["origin_cpu_s"] = round(ocpu1 - ocpu0, 3)
            row["origin_cpu_s_per_1k"] = (ocpu1 - ocpu0) / n * 1000 if n else None
        if n == 0:
            why = s["first_error"] or out[-200:]
            row["failed"] = ("HTTP/2 not supported yet (%s)" if "did not select ALPN h2" in why
                             else "no successful request: %s") % why
        elif sc.driver == "h2load" and "--h1" not in sc.args and s.get("protocol") != "h2":
            row["failed"] = "HTTP/2 not negotiated (ALPN: %s)" % s.get("protocol")
        if t["proc"].poll() is not None:
            name = t.get("name", row["target"])
            row["failed"] = "%s exited (%s) during the row: %s" % (
                name, t["proc"].returncode, self.procs.log_tail(name, 5))
        return row

    def h2load_port(self, t, sc):
        """h2load_port returns the port h2load talks TLS to for target t: nginx's server for
        the scenario, else the target's own (mitmd in reverse mode, or the origin)."""
        return t[sc.nginx_server] if "ka" in t else t["connect"]

    def run_h2load(self, argv, timeout, at=None, seconds=None):
        """run_h2load runs h2load; returns (summary dict or None, output tail), the summary as
        h2load.summary makes it, with the latencies of its 2xx responses under "_lat" (for
        merging slices; suite.py drops it before writing). `at` as in run_bench; `seconds`:
        the measured seconds of a timed run (None: counted, h2load's elapsed time)."""
        log_path = argv[argv.index("--log-file") + 1]
        if os.path.exists(log_path):
            os.unlink(log_path)
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            if at is not None:
                time.sleep(at[0])
                at[1](p.pid)
            out = p.communicate(timeout=timeout)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            p.kill()
            out = p.communicate()[0].decode(errors="replace")
            return None, "h2load timed out after %.0f s: %s" % (timeout, out[-300:])
        try:
            s, lat = h2load.summary(out, log_path, seconds)
        except (OSError, ValueError) as e:
            return None, "h2load exit %d: %s: %s" % (p.returncode, e, out.strip()[-300:])
        s["_lat"] = lat
        return s, out

    def h2load_row(self, row, t, sc, seconds):
        """h2load_row measures an h2load scenario on target t into `row`. Timed rows have
        h2load's own warm-up (--warm-up-time) on the connections they then measure; the
        one-request-per-connection row is counted (h2load's timed mode stalls when the
        server closes the connection), with a short counted warm-up first whose rate sets
        the count so that the row lasts about `seconds`."""
        port = self.h2load_port(t, sc)
        base = "%s/%s-%s" % (self.dir, row["target"], sc.key)
        if sc.per_conn:
            per = H2LOAD_NEWCONN_CLIENTS
            warm_n = per * 8
            ws, _ = self.run_h2load(h2load.argv("h2load", port, sc.path, sc.args,
                                                base + ".warm.log", requests=warm_n),
                                    timeout=60)
            rate = ws["rps"] if ws and ws["rps"] > 0 else 100.0
            n = max(per * 4, int(rate * seconds) // per * per)
            argv = h2load.argv("h2load", port, sc.path, sc.args, base + ".log", requests=n)
            row["bench_args"] = " ".join(argv[1:])
            row["how"] += "; %s requests, each on a new connection" % format(n, ",")
            return self.measure(row, t, sc, lambda at: self.run_h2load(
                argv, timeout=max(60.0, 6 * seconds)), None)
        argv = h2load.argv("h2load", port, sc.path, sc.args, base + ".log", seconds=seconds,
                           warm_s=self.warm_s)
        row["bench_args"] = " ".join(argv[1:])
        return self.measure(row, t, sc, lambda at: self.run_h2load(
            argv, timeout=seconds + self.warm_s + 30, at=at, seconds=seconds), self.warm_s)

    def idle_row(self, key, label, kind, t, workers):
        root = t["proc"].pid
        n = self.idle_n
        single = kind == "mitmdump" or workers == 1
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        if single and 2 * n + 256 > hard:
            # One process holds a client and an upstream socket per connection.
            n = (hard - 256) // 2
            self.notes.append("%s held at most %d idle connections: one process needs two "
                              "descriptors per connection and RLIMIT_NOFILE's hard limit "
                              "here is %d." % (key, n, hard))
        row = {"target": key, "target_label": label, "requested": n,
               "how": "CONNECT + TLS" if kind != "nginx" else
               "TLS to the reverse proxy (no upstream conn until a request)"}
        argv = [sys.executable, os.path.join(HERE, "idle_hold.py"), "--sni", BENCH_NAME,
                "--cafile", t["cafile"], "-n", str(n), "--deadline", str(self.idle_deadline)]
        if kind == "nginx":
            argv += ["--direct", "--server", "127.0.0.1:%d" % t["ka"]]
        else:
            argv += ["--server", "127.0.0.1:%d" % t["proxy"],
                     "--target", "%s:%d" % (BENCH_NAME, t["connect"])]
        time.sleep(0.3)
        procs.reset_peak_rss(root)
        rss0 = procs.tree_kib(root, "VmRSS")
        cpu0 = procs.tree_cpu_seconds(root)
        holder = self.procs.start(key + "-idle", argv, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE)
        try:
            ready, _, _ = select.select([holder.stdout], [], [], self.idle_deadline + 30)
            line = holder.stdout.readline() if ready else b""
            try:
                res = json.loads(line)
            except ValueError:
                row["failed"] = "idle_hold gave no result: %s" % self.procs.log_tail(key + "-idle", 5)
                return row
            settle(root)  # let the proxy finish its side of the last handshakes
            # idle means quiet: a proxy may give memory back after a while (mitmd trims a
            # connection quiet for 1 s), so the last connections opened are not read mid-way
            time.sleep(IDLE_QUIET_S)
            rss1 = procs.tree_kib(root, "VmRSS")
            cpu1 = procs.tree_cpu_seconds(root)
            row.update({"established": res["established"], "failed_conns": res["failed"],
                        "seconds": res["seconds"], "first_error": res["first_error"],
                        "rss_before_kib": rss0, "rss_held_kib": rss1,
                        "peak_rss_kib": procs.tree_kib(root, "VmHWM")})
            e = res["established"]
            row["rss_kib_per_conn"] = (rss1 - rss0) / e if e else None
            row["cpu_s_per_1k_conns"] = (cpu1 - cpu0) / e * 1000 if e else None
            if e < n:
                row["note"] = "%s: %d of %d idle connections established in %.0f s (%s)." % (
                    key, e, n, res["seconds"], res["first_error"] or "time limit reached")
                self.notes.append(row["note"])
        finally:
            holder.stdin.close()
            try:
                holder.wait(10)
            except subprocess.TimeoutExpired:
                pass
            self.procs.stop(holder)
            settle(root)  # the proxy closes 2N sockets before the next row
        return row

    def run_target(self, key, label, kind, workers):
        """run_target measures one target: the idle row on a fresh instance, then the load
        rows on another fresh instance (so that neither sees the other's aftermath)."""
        log = lambda msg: print("bench: %s" % msg, file=sys.stderr, flush=True)
        if kind == "mitmd":
            label = "%s (%s)" % (label, "%d worker%s" % (workers, "s" * (workers != 1))
                                 if workers else "%d workers" % len(os.sched_getaffinity(0)))
        elif kind == "nginx" and workers:
            label = "%s (%d worker%s)" % (label, workers, "s" * (workers != 1))
        # --quick: the 1-worker idle row is skipped (memory per connection does not depend
        # on the worker count; the full run has it). nginx's 1-worker instance is only the
        # reference for CPU per request: no idle row.
        if kind != "direct" and self.idle_n > 0 and not (self.quick and workers == 1) and \
                not (kind == "nginx" and workers):
            t0 = time.monotonic()
            t = self.try_start(key, label, kind, workers, "idle")
            if t is not None:
                try:
                    r = self.idle_row(key, label, kind, t, workers)
                finally:
                    self.procs.stop(t["proc"])
                self.idle.append(r)
                log("%-9s idle %s held, %s KiB/conn (%.0f s)" % (
                    key, r.get("established"), r.get("rss_kib_per_conn") and
                    round(r["rss_kib_per_conn"], 1), time.monotonic() - t0))
        if not self.scenarios:  # only reverse-phase rows (or idle rows) were asked for
            return
        t = self.try_start(key, label, kind, workers, "load")
        if t is None:
            return
        try:
            for sc in self.scenarios:
                r = self.load_row(key, label, kind, t, sc)
                self.rows.append(r)
                log("%-9s %-18s %8s req/s  cpu %s s/1k  %s" % (
                    key, sc.key, r.get("rps") and round(r["rps"]),
                    r.get("cpu_s_per_1k") and round(r["cpu_s_per_1k"], 3),
                    r.get("failed") or ("errors %d" % r.get("errors", 0))))
        finally:
            if kind != "direct":
                self.procs.stop(t["proc"])

    def try_start(self, key, label, kind, workers, what, scenarios=None):
        """try_start starts a target; if it cannot, records failed rows for `what` ("idle",
        "load", "latency", or the given `scenarios`) and returns None."""
        try:
            return self.start_target(key, kind, workers, what == "idle")
        except (RuntimeError, OSError, subprocess.CalledProcessError) as e:
            print("bench: %s did not start: %s" % (key, e), file=sys.stderr, flush=True)
            why = "did not start: %s" % str(e)[:200]
            if what == "idle":
                self.idle.append({"target": key, "target_label": label, "how": "-",
                                  "failed": why})
            else:
                for sc in scenarios or (self.scenarios if what == "load" else [LATENCY]):
                    self.rows.append({"scenario": sc.key, "target": key, "target_label": label,
                                      "how": "-", "failed": why, "requests": 0, "rps": None})
            return None

    def verify_tls(self, t):
        """verify_tls makes one TLS handshake with each port of target t that the reverse
        phase uses, verifying the certificate for BENCH_NAME against the target's CA (h2load
        does not verify); returns None, or why it failed."""
        if t.get("proxy") is not None:  # an explicit proxy: mitmd-bench verifies through it
            return None
        ports = [t["ka"], t["nk"]] if "ka" in t else [t["connect"]]
        for port in ports:
            try:
                ctx = ssl.create_default_context(cafile=t["cafile"])
                with socket.create_connection(("127.0.0.1", port), 10) as raw:
                    with ctx.wrap_socket(raw, server_hostname=BENCH_NAME):
                        pass
            except (OSError, ssl.SSLError) as e:
                return "certificate for %s on port %d not verified with %s: %s" % (
                    BENCH_NAME, port, os.path.basename(t["cafile"]), e)
        return None

    def reverse_rows(self):
        """reverse_rows measures the reverse phase: the like-for-like rows (origin direct,
        nginx's reverse proxy and mitmd in reverse mode, driven by the same client), then the
        mode row (mitmd regular against mitmd reverse, same mitmd-bench load). Each on
        instances started for it; the targets alternate per row in REVERSE_SLICES slices."""
        chosen = lambda k: not self.a.targets or k in self.a.targets
        scen = [sc for sc in REVERSE_SCENARIOS
                if not self.a.scenarios or sc.key in self.a.scenarios]
        like = [sc for sc in scen if sc.key != MODE_SCENARIO]
        mode = [sc for sc in scen if sc.key == MODE_SCENARIO]
        ncpu = len(os.sched_getaffinity(0))
        mlabel = "%d workers" % ncpu
        if like:
            self.alternate([(k, lab, kind) for k, lab, kind in (
                ("direct", "origin (direct)", "direct"),
                ("nginx", "nginx", "nginx"),
                ("mitmd-rev", "mitmd reverse (%s)" % mlabel, "mitmd-rev")) if chosen(k)], like)
        if mode and chosen("mitmd") and chosen("mitmd-rev"):
            self.alternate([("mitmd", "mitmd (%s)" % mlabel, "mitmd"),
                            ("mitmd-rev", "mitmd reverse (%s)" % mlabel, "mitmd-rev")], mode,
                           MODE_SLICES, self.row_s / REVERSE_SLICES)

    def alternate(self, targets, scenarios, slices=REVERSE_SLICES, slice_s=None):
        """alternate starts the (key, label, kind) targets, checks their certificates, and
        runs each scenario on all of them in `slices` slices of slice_s seconds (default
        row/slices), the order reversed from slice to slice so that drift of the machine
        cancels; appends one merged row per scenario and target (merge_pooled)."""
        slice_s = slice_s if slice_s is not None else self.row_s / slices
        log = lambda msg: print("bench: %s" % msg, file=sys.stderr, flush=True)
        inst, labels, kinds = {}, {}, {}
        try:
            for key, label, kind in targets:
                t = self.try_start(key, label, kind, None, "reverse", scenarios)
                if t is None:
                    continue
                why = self.verify_tls(t)
                if why is not None:
                    log("%s: %s" % (key, why))
                    for sc in scenarios:
                        self.rows.append({"scenario": sc.key, "target": key,
                                          "target_label": label, "how": "-",
                                          "failed": why, "requests": 0, "rps": None})
                    if kind != "direct":
                        self.procs.stop(t["proc"])
                    continue
                inst[key], labels[key], kinds[key] = t, label, kind
            for sc in scenarios:
                got = {key: [] for key in inst}
                for i in range(slices):
                    order = list(inst) if i % 2 == 0 else list(reversed(list(inst)))
                    for key in order:
                        if kinds[key] != "direct":
                            settle(inst[key]["proc"].pid, limit=5.0)
                        r = self.load_row(key, labels[key], kinds[key], inst[key], sc,
                                          slice_s,
                                          warm_inside="--new-conn" not in sc.args)
                        got[key].append(r)
                        log("%-9s %-18s %8s req/s  cpu %s s/1k  %s  (slice %d)" % (
                            key, sc.key, r.get("rps") and round(r["rps"]),
                            r.get("cpu_s_per_1k") and round(r["cpu_s_per_1k"], 3),
                            r.get("failed") or ("errors %d" % r.get("errors", 0)), i + 1))
                for key in inst:
                    r = merge_pooled(got[key])
                    r["how"] += "; %d alternating slices of %g s" % (slices, slice_s)
                    if kinds[key] == features.RULES_KIND:
                        self.rule_hits(r, inst[key])
                    self.rows.append(r)
        finally:
            for key in reversed(list(inst)):
                if kinds[key] != "direct":
                    self.procs.stop(inst[key]["proc"])

    def feature_rows(self):
        """feature_rows measures the feature rows (FEATURE_SCENARIOS): for each, a fresh
        plain mitmd and a fresh mitmd of the row's instance kind (10 rules, or server
        replay from a recording made first) alternate in MODE_SLICES slices on the same
        load; features.py compares their CPU per request."""
        scen = [sc for sc in FEATURE_SCENARIOS
                if not self.a.scenarios or sc.key in self.a.scenarios]
        ncpu = len(os.sched_getaffinity(0))
        what = {features.RULES_KIND: "10 rules", features.REPLAY_KIND: "server replay"}
        for sc in scen:
            self.alternate([("mitmd", "mitmd (%d workers)" % ncpu, "mitmd"),
                            (sc.instance, "mitmd, %s (%d workers)" % (what[sc.instance], ncpu),
                             sc.instance)], [sc], MODE_SLICES, self.row_s / REVERSE_SLICES)

    def rule_hits(self, row, t):
        """rule_hits reads the rules instance's rule counters from its /metrics (every
        application since it started, warm-ups included) into row["rule_hits"]; a row whose
        rules never applied measured nothing, and fails."""
        if row.get("failed") or not t.get("metrics"):
            return
        text = features.scrape(t["metrics"])
        hits = features.rule_counters(text or "")
        row["rule_hits"] = hits
        row["how"] += "; rule applications: %s" % (
            ", ".join("%s %s" % (k, format(v, ",")) for k, v in sorted(hits.items()))
            or "none")
        if text is not None and not hits:
            row["failed"] = "no rule applied (mitmd_rule_applications_total is 0)"

    def latency_rows(self, with_nginx):
        """latency_rows measures the open-loop latency row: R = half of mitmd's (default
        workers) h1-keepalive-1k req/s from this run (measured here on the fresh instance
        when that row did not run), then direct, mitmd and (with_nginx) nginx's
        re-encrypting proxy at R, each after a warm-up at R. Sets p99_added_over_direct_ms
        on the mitmd and nginx rows; self.latency gets mitmd's figures and nginx's as
        nginx_p50/p99_added_over_direct_ms (the reference: a mature C proxy, same rate)."""
        log = lambda msg: print("bench: %s" % msg, file=sys.stderr, flush=True)
        label = "mitmd (%d workers)" % len(os.sched_getaffinity(0))
        t = self.try_start("mitmd", label, "mitmd", None, "latency")
        if t is None:
            return
        tn = None
        try:
            ka = next((r for r in self.rows if r["scenario"] == SCENARIOS[0].key and
                       r["target"] == "mitmd" and r.get("rps") and not r.get("failed")), None)
            if ka is not None:
                max_rps, source = ka["rps"], "the h1-keepalive-1k row of this run"
            else:
                jpath = "%s/mitmd-latency-max.json" % self.dir
                self.run_bench(self.bench_argv(t, SCENARIOS[0], self.warm_s, jpath + ".warm",
                                               True), self.warm_s)
                s, out = self.run_bench(self.bench_argv(t, SCENARIOS[0], self.row_s, jpath,
                                                        False), self.row_s)
                if s is None or not s.get("requests"):
                    self.rows.append({"scenario": LATENCY.key, "target": "mitmd",
                                      "target_label": label, "how": "-", "requests": 0,
                                      "rps": None, "failed": "no maximum rate: %s" % out})
                    return
                max_rps = s["rps"]
                source = "a closed-loop h1-keepalive-1k run just before (that row did not run)"
            rate = round(max_rps / 2)
            settle(self.origin.pid)  # the origin's share of the previous rows is over
            self.latency = {"rate": rate, "max_rps": max_rps, "max_rps_source": source}
            sc = Scenario(LATENCY.key, LATENCY.args + ["--rate", str(rate)], LATENCY.nginx_server,
                          LATENCY.desc)
            # Direct, mitmd and nginx alternate in LATENCY_SLICES slices of row/LATENCY_SLICES
            # seconds, so that each pair sees about the same machine; the added latency is
            # the median of the pairs' differences, each row shows the median slice.
            targets = [("direct", "origin (direct)", "direct",
                        self.start_target("direct", "direct", None, False)),
                       ("mitmd", label, "mitmd", t)]
            if with_nginx:
                tn = self.try_start("nginx", "nginx", "nginx", None, "latency")
                if tn is not None:
                    targets.append(("nginx", "nginx", "nginx", tn))
            slices = {key: [] for key, _, _, _ in targets}
            for i in range(LATENCY_SLICES):
                for key, lab, kind, tt in targets:
                    r = self.load_row(key, lab, kind, tt, sc, self.row_s / LATENCY_SLICES,
                                      warm_inside=True)
                    slices[key].append(r)
                    log("%-9s %-18s %8s req/s  p50 %s p99 %s ms  %s" % (
                        key, sc.key, r.get("rps") and round(r["rps"]),
                        r.get("latency_us") and round(r["latency_us"]["p50"] / 1000, 2),
                        r.get("latency_us") and round(r["latency_us"]["p99"] / 1000, 2),
                        r.get("failed") or ("errors %d" % r.get("errors", 0))))
            for key, lab, kind, tt in targets:
                r = merge_slices(slices[key])
                r["how"] += ("; open loop at %s req/s, %d alternating slices, each measured "
                             "after a %g s warm-up at that rate on the same connections" % (
                                 format(rate, ","), LATENCY_SLICES, self.warm_s))
                r["rate"] = rate
                self.rows.append(r)
            for key, _, _, _ in targets[1:]:
                pairs = [(d, m) for d, m in zip(slices["direct"], slices[key])
                         if d.get("latency_us") and m.get("latency_us") and
                         not d.get("failed") and not m.get("failed")]
                if len(pairs) != LATENCY_SLICES:
                    continue
                prefix = "" if key == "mitmd" else key + "_"
                for pct in ("p50", "p99"):
                    diffs = [(m["latency_us"][pct] - d["latency_us"][pct]) / 1000
                             for d, m in pairs]
                    self.latency["%s%s_added_over_direct_ms" % (prefix, pct)] = \
                        round(median(diffs), 3)
                    self.latency["%s%s_added_per_slice_ms" % (prefix, pct)] = \
                        [round(x, 3) for x in diffs]
                row = next(r for r in self.rows
                           if r["scenario"] == LATENCY.key and r["target"] == key)
                row["p99_added_over_direct_ms"] = \
                    self.latency["%sp99_added_over_direct_ms" % prefix]
        finally:
            self.procs.stop(t["proc"])
            if tn is not None:
                self.procs.stop(tn["proc"])

    def micro_benchmarks(self):
        """micro_benchmarks runs mitmd-bench-forge (master forges per second on one core)
        and mitmd-bench-certcache (warm lookups per second) when they were given; returns
        {"forge": {...}, "certcache": [{...}, ...]} from their JSON lines, or an "error"."""
        out = {}
        seconds = "1" if self.quick else "2"
        for name, path in (("forge", self.a.forge), ("certcache", self.a.certcache)):
            if not path:
                continue
            try:
                p = subprocess.run([path, seconds], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, timeout=60)
                text = p.stdout.decode(errors="replace")
            except (OSError, subprocess.TimeoutExpired) as e:
                out[name] = {"error": str(e)[:200]}
                continue
            found = []
            for line in text.splitlines():
                if line.startswith("{"):
                    try:
                        found.append(json.loads(line))
                    except ValueError:
                        pass
            if p.returncode != 0 or not found:
                out[name] = {"error": "exit %d: %s" % (p.returncode, text.strip()[-200:])}
            else:
                out[name] = found[0] if name == "forge" else found
            print("bench: %s %s" % (name, json.dumps(out[name])), file=sys.stderr, flush=True)
        return out

    def longpath_rows(self, targets):
        """longpath_rows runs the long-path rows (longpath.ROWS: the full run all of them, 3
        interleaved runs each; --quick the download row once) when mitmd is a target and the
        delay line was built; returns their list (empty when not run)."""
        keys = [k for k in self.a.scenarios or () if k in LONGPATH_KEYS]
        if (self.a.scenarios and not keys) or not any(t[0] == "mitmd" for t in targets):
            return []
        if not self.a.delayline:
            self.notes.append("The long-path rows did not run: no --delayline given.")
            return []
        if not keys and self.quick:
            keys = [longpath.ROWS[0][0]]
        rows = longpath.run_rows(self.procs, self.a.repo, self.a.mitmd, self.a.delayline,
                                 self.dir, 1 if self.quick else 3, keys, Interrupted)
        for r in rows:
            print("bench: long path %s: %s" % (r["key"], r.get("failed") or
                                               "direct %.2f, mitmd %.2f MB/s, %.3fx" % (
                                                   r["direct_MBps"], r["mitmd_MBps"],
                                                   r["ratio"])), file=sys.stderr, flush=True)
        return rows

    def main(self):
        a = self.a
        if a.baseline_mitmd:
            self.notes.extend(a.ab_note)
            return ab.run(sys.modules[__name__], self, a.baseline_label or a.baseline_mitmd,
                          a.candidate_label or a.candidate_mitmd or a.mitmd,
                          a.rounds if a.rounds else (2 if self.quick else 4), a.build_desc,
                          a.baseline_forge)
        t_start = time.monotonic()
        machine, commit = machine_info(self.a.repo)
        self.scenarios = [s for s in SCENARIOS
                          if not self.a.scenarios or s.key in self.a.scenarios]
        self.latency = None
        # --quick leaves out the nginx-1w reference (unless asked for): it keeps the quick
        # run within two minutes; the full run has it. mitmd in reverse mode runs only in
        # the reverse phase.
        targets = [t for t in TARGETS if (t[0] in self.a.targets if self.a.targets else
                                          not (self.quick and t[0] == "nginx-1w"))]
        self.start_origin()
        for key, label, kind, workers in targets:
            if kind != "mitmd-rev":
                self.run_target(key, label, kind, workers)
        if any(t[0] == "mitmd" for t in targets):
            self.feature_rows()
        try:
            self.reverse_rows()
        except Exception as e:  # noqa: BLE001 - keep the rows measured so far
            if isinstance(e, Interrupted):
                raise
            print("bench: the reverse phase failed: %r" % e, file=sys.stderr, flush=True)
            self.notes.append("The reverse phase failed: %r (its rows are missing or "
                              "incomplete)." % e)
        self.latency = None
        if (not self.a.scenarios or LATENCY.key in self.a.scenarios) and \
                any(t[0] == "mitmd" for t in targets):
            self.latency_rows(not self.a.targets or "nginx" in self.a.targets)
        self.longpath = self.longpath_rows(targets)
        micro = self.micro_benchmarks()
        report.add_ratios(self.rows)
        report.add_idle_ratios(self.idle)
        now = datetime.datetime.now(datetime.timezone.utc)
        result = {
            "date": now.strftime("%Y-%m-%d %H:%M UTC"),
            "quick": self.quick,
            "machine": machine,
            "git_commit": commit,
            "load_generator": "mitmd-bench, 2 threads (h2load, 2 threads, for the h2load-* rows)",
            "row_seconds": self.row_s,
            "warmup_seconds": self.warm_s,
            "idle_target_conns": self.idle_n,
            "idle_quiet_s": IDLE_QUIET_S,
            "scenarios": dict({s.key: s.desc for s in self.scenarios},
                              **{s.key: s.desc for s in REVERSE_SCENARIOS + FEATURE_SCENARIOS
                                 if any(r["scenario"] == s.key for r in self.rows)},
                              **({LATENCY.key: LATENCY.desc} if self.latency else {})),
            "rows": self.rows,
            "idle": self.idle,
            "latency": self.latency,
            "longpath": self.longpath,
            "micro": micro,
            "notes": self.notes_for(machine) + self.notes,
        }
        for r in self.rows:
            r.pop("_lat", None)
        result["targets"] = report.targets(result)
        machine["loadavg_1m_at_end"] = loadavg()
        result["wall_seconds"] = round(time.monotonic() - t_start, 1)
        md = report.markdown(result)
        # Results go only under --results (bench/results/); no tracked file is rewritten.
        os.makedirs(self.a.results, exist_ok=True)
        stem = now.strftime("%Y-%m-%dT%H%M%SZ") + ("-quick" if self.quick else "")
        with open(os.path.join(self.a.results, stem + ".json"), "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")
        md = plot.attach(os.path.join(self.a.results, stem + ".json"), md)  # SVGs beside it
        with open(os.path.join(self.a.results, stem + ".md"), "w") as f:
            f.write(md)
        print(md)
        print("bench: wrote %s/%s.{json,md} in %.0f s" % (self.a.results, stem,
                                                          result["wall_seconds"]),
              file=sys.stderr)
        failed = [r for r in self.rows + self.idle if r.get("failed")]
        return 1 if failed and self.a.strict else 0

    def notes_for(self, machine):
        return [
            "CPU s/1k req: user+sys seconds of all the proxy's processes (from /proc, "
            "workers included) per 1,000 successful requests; for the direct rows, the "
            "origin nginx's. Peak RSS: sum of VmHWM over those processes (shared pages "
            "counted once per process), reset at the start of each row.",
            "vs direct: this row / the origin-direct row of the same scenario (req/s; CPU "
            "compares the proxy's CPU with the origin's). vs nginx: mitmd or mitmdump / the "
            "nginx row of the same scenario; req/s is not compared for mitmd with 1 worker.",
            "mitmd and mitmdump are driven as explicit proxies (CONNECT, then TLS through the "
            "tunnel, intercepted); nginx has no CONNECT, so it is a TLS-terminating, "
            "re-encrypting reverse proxy (upstream keep-alive for the keep-alive, HTTP/2 and "
            "100 KiB rows; a new upstream TLS connection per client connection with "
            "proxy_ssl_session_reuse on for newconn-* and hosts-cold). nginx has a "
            "wildcard certificate, so hosts-cold forges nothing there.",
            "newconn-full: the client never resumes (a full handshake with the proxy every "
            "connection); newconn-resume: the client resumes its TLS session with whatever "
            "the server offers.",
            "Every mitmd instance runs with its metrics endpoint open (--set "
            "metrics_listen=127.0.0.1:PORT on a free port; nothing scrapes it during the "
            "rows), as it would in production (issue 13).",
            "rules-10: keep-alive 1 KiB through mitmd with the 10-rule set of the rules "
            "micro-benchmark (tests/unit/bench_flowfilter.c: 2 block_list, map_remote, 3 "
            "modify_headers, 2 inject_latency, inject_error, inject_fault; the header rule "
            "that matches every request of that benchmark matches www.bench.test here), "
            "alternating with plain mitmd in %d slices; the row says how often each rule "
            "kind applied (from /metrics). server-replay: the same load answered by mitmd -S "
            "from a recording, alternating with plain mitmd forwarding to the origin."
            % MODE_SLICES,
            "mitmd runs with its defaults for the load rows; for the idle rows (a separate "
            "instance) with --max-conns %d so that one worker can hold every connection "
            "(its RSS before the connections includes that larger connection table). "
            "mitmdump %s is one Python process and reaches the origin through a resolver "
            "addon (bench/suite/mitmdump_resolve.py) that maps *.bench.test to 127.0.0.1 "
            "like mitmd's --resolve." % (max(4096, self.idle_n + 1024),
                                         machine.get("mitmdump")),
            "others' CPU: cores kept busy during the row by processes outside the bench "
            "(all CPU time from /proc/stat minus the target's, the origin's, mitmd-bench's "
            "and the suite's). Well above 0 means the machine was shared: req/s and "
            "latency are then depressed by contention, CPU s/1k req much less so.",
            "Origin: %s, TLS 1.3, ECDSA P-256 certificate, access log off, "
            "worker_processes auto." % machine.get("nginx"),
            "hosts-warm: the names hosts-cold completed on the same instance, again (its "
            "warm-up goes once through the whole set first); cold/warm req/s is in the "
            "targets. h1-latency-half-max: open loop at half of mitmd's h1-keepalive-1k "
            "req/s, direct, mitmd and nginx's re-encrypting proxy (upstream keep-alive) "
            "alternating in %d slices at the same rate (added latency: the median of the "
            "slice pairs' differences with direct; each slice runs mitmd-bench with a "
            "warm-up at R on the connections it then measures, so that connection set-up "
            "is not in the latency); with the load generator, the origin "
            "and the proxy on the same cores, its tail latency measures CPU contention as "
            "much as the proxy (see others' CPU and the load average)." % LATENCY_SLICES,
            "nginx (1 worker): the same reverse proxy with worker_processes 1, the "
            "reference for the 2-worker / 1-worker CPU per request target (no idle row).",
            "Reverse phase (h2load-*, rev-newconn-full, mode-h1-1k): mitmd runs with --mode "
            "reverse:https://www.bench.test:ORIGIN (\"mitmd reverse\"), so that it, nginx's "
            "reverse proxy and the origin are driven by the same client; the targets of a "
            "row alternate in slices (order reversed each slice), CPU per request pooled "
            "over the slices. h2load (nghttp2 %s) does not verify certificates (the suite "
            "verifies each server once first) and resumes its TLS session on every "
            "reconnect, so h2load-newconn is the resumed row and rev-newconn-full "
            "(mitmd-bench, no resumption) the full-handshake one. h2load latency: from a "
            "request's send to its last byte (connection set-up not included). mode-h1-1k: "
            "mitmd regular (CONNECT) against mitmd reverse, mitmd-bench, same load."
            % h2load_version(),
        ]


def main():
    ap = argparse.ArgumentParser(description="mitmd benchmark suite (use bench/run)")
    ap.add_argument("--quick", action="store_true", help="1.5 s rows, 1,000 idle conns, "
                    "no 1-worker idle row, no nginx-1w reference")
    ap.add_argument("--mitmd", required=True, help="path to the mitmd binary")
    ap.add_argument("--bench", required=True, help="path to mitmd-bench")
    ap.add_argument("--repo", required=True, help="repository root (for the commit id)")
    ap.add_argument("--results", required=True, help="directory for <date>.json/.md")
    ap.add_argument("--forge", help="path to mitmd-bench-forge (master forges/s)")
    ap.add_argument("--certcache", help="path to mitmd-bench-certcache (lookups/s)")
    ap.add_argument("--delayline", help="path to bench/delayline (the long-path rows)")
    ap.add_argument("--duration", type=float, help="seconds per row (default 5, quick 1.5)")
    ap.add_argument("--idle-conns", type=int, help="idle connections (default 10000, "
                    "quick 1000; 0 skips the idle rows)")
    ap.add_argument("--scenarios", nargs="*", help="only these scenarios: " +
                    ", ".join(s.key for s in SCENARIOS + FEATURE_SCENARIOS + REVERSE_SCENARIOS +
                              [LATENCY]) + ", " + ", ".join(LONGPATH_KEYS))
    ap.add_argument("--targets", nargs="*", help="only these targets: " +
                    ", ".join(t[0] for t in TARGETS))
    ap.add_argument("--strict", action="store_true", help="exit 1 if any row failed")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ab_args = ap.add_argument_group("A/B run (bench/run --baseline REV)")
    ab_args.add_argument("--baseline-mitmd", help="path to the baseline's mitmd: run only "
                         "the A/B comparison of it with --mitmd (the candidate)")
    ab_args.add_argument("--baseline-forge", help="path to the baseline's mitmd-bench-forge")
    ab_args.add_argument("--candidate-mitmd", help="path to the candidate's mitmd (default "
                         "--mitmd)")
    ab_args.add_argument("--candidate-forge", help="path to the candidate's mitmd-bench-forge "
                         "(default --forge)")
    ab_args.add_argument("--baseline-label", help="how the baseline is named in the results")
    ab_args.add_argument("--candidate-label", help="how the candidate is named in the results")
    ab_args.add_argument("--rounds", type=int, help="A/B rounds (default 4, quick 2)")
    ab_args.add_argument("--build-desc", help="how both builds were made (for the results)")
    ab_args.add_argument("--ab-note", action="append", default=[],
                         help="a note for the A/B results (repeatable)")
    a = ap.parse_args()
    if a.rounds is not None and a.rounds < 1:
        ap.error("--rounds must be at least 1")
    for s in a.scenarios or ():
        if s not in {x.key for x in SCENARIOS + FEATURE_SCENARIOS + REVERSE_SCENARIOS +
                     [LATENCY]} | set(LONGPATH_KEYS):
            ap.error("unknown scenario %r" % s)
    for t in a.targets or ():
        if t not in {x[0] for x in TARGETS}:
            ap.error("unknown target %r" % t)

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    r = Run(a)
    rc = 1
    try:
        rc = r.main()
    except Interrupted as e:
        print("bench: interrupted (%s), stopping everything" % e, file=sys.stderr)
        rc = 130
    except (RuntimeError, OSError, subprocess.CalledProcessError) as e:
        print("bench: %s" % e, file=sys.stderr)
        rc = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        r.procs.stop_all()
        if a.keep:
            print("bench: kept %s" % r.dir, file=sys.stderr)
        else:
            shutil.rmtree(r.dir, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
