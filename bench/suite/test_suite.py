"""test_suite.py - unit tests of the bench suite's own logic (python3 -m unittest).

Run: python3 -m unittest discover -s bench/suite -p 'test_*.py'
Covers /proc parsing and process-tree sums, ratios, the markdown table, the A/B comparison
and its cell order, h2load's command line and output (summary, per-request log, percentiles),
the reverse phase (scenarios, ports, pooled slices, like-for-like and mode ratios, targets and
table), the feature rows (features.py: the 10-rule set, rule counters, on/off ratios, metrics
and feature arguments of every mitmd instance), the mitmdump resolver rules, and idle_hold.py against a local TLS server and CONNECT
relay (skipped without the openssl CLI).
"""
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import longpath  # noqa: E402
import procs  # noqa: E402
import report  # noqa: E402


class ProcParsing(unittest.TestCase):
    def test_stat_with_spaces_and_parens_in_name(self):
        # Fields after the name: state ppid pgrp session tty tpgid flags minflt cminflt
        # majflt cmajflt utime stime cutime cstime ...
        line = "4242 (a b) (c)) S 17 1 1 0 -1 0 0 0 0 0 100 50 7 3 20 0 1 0 999 0 0\n"
        self.assertEqual(procs.parse_stat(line), (4242, 17, 160))

    def test_stat_of_this_process(self):
        with open("/proc/self/stat") as f:
            pid, ppid, ticks = procs.parse_stat(f.read())
        self.assertEqual(pid, os.getpid())
        self.assertEqual(ppid, os.getppid())
        self.assertGreaterEqual(ticks, 0)

    def test_status_kib(self):
        text = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n"
        self.assertEqual(procs.parse_status_kib(text, "VmHWM"), 2048)
        self.assertEqual(procs.parse_status_kib(text, "VmRSS"), 1024)
        self.assertEqual(procs.parse_status_kib(text, "VmSwap"), 0)

    def test_tree_counts_a_busy_child(self):
        # A child that burns ~0.3 s of CPU shows up in the tree of its parent (this process).
        before = procs.tree_cpu_seconds(os.getpid())
        child = subprocess.Popen([sys.executable, "-c",
                                  "import time\nt=time.process_time()\n"
                                  "while time.process_time()-t<0.3: pass\n"
                                  "time.sleep(5)"])
        try:
            time.sleep(1.0)
            self.assertIn(child.pid, procs.tree_pids(os.getpid()))
            self.assertGreaterEqual(procs.tree_cpu_seconds(os.getpid()) - before, 0.25)
            self.assertGreater(procs.tree_kib(child.pid, "VmRSS"), 0)
        finally:
            child.kill()
            child.wait()

    def test_stop_only_what_was_started(self):
        d = tempfile.mkdtemp()
        try:
            p = procs.Procs(d)
            a = p.start("a", ["sleep", "30"])
            b = p.start("b", ["sleep", "30"])
            p.stop(a)
            self.assertIsNotNone(a.poll())
            self.assertIsNone(b.poll())
            p.stop_all()
            self.assertIsNotNone(b.poll())
            self.assertEqual(p.running, [])
        finally:
            shutil.rmtree(d)


    def test_interrupted_stop_leaves_it_to_stop_all(self):
        # A second Ctrl-C while stop() waits must not lose the process: stop_all gets it.
        d = tempfile.mkdtemp()
        try:
            p = procs.Procs(d)
            a = p.start("a", ["sleep", "30"])
            real_wait = a.wait

            def interrupted(timeout=None):
                a.wait = real_wait
                raise KeyboardInterrupt

            a.wait = interrupted
            with self.assertRaises(KeyboardInterrupt):
                p.stop(a)
            self.assertEqual([x[1] for x in p.running], [a])
            p.stop_all()
            self.assertIsNotNone(a.poll())
            self.assertEqual(p.running, [])
        finally:
            shutil.rmtree(d)


def row(scenario, target, rps, cpu, requests=100, **kw):
    r = {"scenario": scenario, "target": target, "target_label": target, "how": "x",
         "rps": rps, "cpu_s_per_1k": cpu, "requests": requests}
    r.update(kw)
    return r


class Ratios(unittest.TestCase):
    def test_ratios_per_scenario(self):
        rows = [row("s", "direct", 1000, 0.1), row("s", "nginx", 500, 0.2),
                row("s", "mitmd", 400, 0.3), row("s", "mitmd-1w", 300, 0.25),
                row("s", "mitmdump", 50, 2.0), row("t", "direct", 10, 1.0),
                row("t", "mitmd", 5, 2.0)]
        report.add_ratios(rows)
        r = {(x["scenario"], x["target"]): x["ratios"] for x in rows}
        self.assertIsNone(r[("s", "direct")]["rps_vs_direct"])
        self.assertAlmostEqual(r[("s", "nginx")]["rps_vs_direct"], 0.5)
        self.assertAlmostEqual(r[("s", "nginx")]["cpu_vs_direct"], 2.0)
        self.assertIsNone(r[("s", "nginx")]["rps_vs_nginx"])
        self.assertAlmostEqual(r[("s", "mitmd")]["rps_vs_nginx"], 0.8)
        self.assertAlmostEqual(r[("s", "mitmd")]["cpu_vs_nginx"], 1.5)
        self.assertIsNone(r[("s", "mitmd-1w")]["rps_vs_nginx"])  # not like for like
        self.assertAlmostEqual(r[("s", "mitmd-1w")]["cpu_vs_nginx"], 1.25)
        self.assertAlmostEqual(r[("s", "mitmdump")]["rps_vs_nginx"], 0.1)
        # No nginx row in scenario t: no nginx ratio, but the direct ratio is there.
        self.assertIsNone(r[("t", "mitmd")]["rps_vs_nginx"])
        self.assertAlmostEqual(r[("t", "mitmd")]["rps_vs_direct"], 0.5)

    def test_failed_rows_have_no_ratios(self):
        rows = [row("s", "direct", 1000, 0.1), row("s", "nginx", 0, None, requests=0),
                row("s", "mitmd", 0, None, requests=0, failed="HTTP/2 not supported yet")]
        report.add_ratios(rows)
        self.assertEqual(set(rows[2]["ratios"].values()), {None})
        self.assertIsNone(rows[1]["ratios"]["rps_vs_direct"])

    def test_idle_ratios(self):
        idle = [{"target": "nginx", "rss_kib_per_conn": 20.0},
                {"target": "mitmd", "rss_kib_per_conn": 50.0},
                {"target": "mitmdump", "rss_kib_per_conn": None}]
        report.add_idle_ratios(idle)
        self.assertIsNone(idle[0]["kib_per_conn_vs_nginx"])
        self.assertAlmostEqual(idle[1]["kib_per_conn_vs_nginx"], 2.5)
        self.assertIsNone(idle[2]["kib_per_conn_vs_nginx"])


def result_set():
    rows = [row("h1", "direct", 1000.0, 0.1, latency_us={"p50": 1500.0, "p99": 9000.0},
                peak_rss_kib=2048, errors=0),
            row("h1", "mitmd", 500.0, 0.2, latency_us={"p50": 2500.0, "p99": 12000.0},
                peak_rss_kib=4096, errors=3, first_error="tls | handshake\nfailed"),
            row("h2", "mitmd", None, None, requests=0,
                failed="HTTP/2 not supported yet (server did not select ALPN h2)")]
    report.add_ratios(rows)
    return {"date": "2026-01-01 00:00 UTC", "quick": True, "git_commit": "abc",
            "machine": {"cpu_model": "Test CPU", "cores": 2, "mem_gib": 1.0, "kernel": "6.1"},
            "load_generator": "mitmd-bench", "row_seconds": 2.0, "warmup_seconds": 0.5,
            "wall_seconds": 10, "idle_target_conns": 10, "rows": rows,
            "idle": [{"target": "mitmd", "target_label": "mitmd", "how": "CONNECT + TLS",
                      "established": 10, "failed_conns": 0, "seconds": 1.0,
                      "cpu_s_per_1k_conns": 0.5, "rss_before_kib": 1024,
                      "rss_held_kib": 2048, "rss_kib_per_conn": 102.4,
                      "kib_per_conn_vs_nginx": None}],
            "notes": ["a note"]}


class Markdown(unittest.TestCase):
    def test_table(self):
        md = report.markdown(result_set())
        lines = md.splitlines()
        header = next(l for l in lines if l.startswith("| scenario"))
        cols = header.count("|")
        body = [l for l in lines if l.startswith("| h")]
        self.assertEqual(len(body), 3)
        for l in body:  # escaped pipes keep every row at the header's column count
            self.assertEqual(l.replace("\\|", "").count("|"), cols, l)
        self.assertIn("| 1,000 | 1.50 | 9.00 | 0.100 | 2.0 |", body[0])
        self.assertIn("0.50x | 2.00x", body[1])
        self.assertIn("3: tls \\| handshake failed", body[1])
        self.assertIn("HTTP/2 not supported yet", body[2])
        self.assertIn("| h2 | mitmd | x | - | - | - | - |", body[2])
        self.assertIn("| mitmd | CONNECT + TLS | 10 | 0 | 1.0 | 0.500 | 1.0 | 2.0 | 102.4 | - |",
                      md)
        self.assertIn("Test CPU, 2 cores", md)
        self.assertIn("- a note", md)


def full_result():
    """A result set with every row the targets need; mitmd passes some and fails others."""
    lat = lambda p50, p99: {"p50": p50, "p90": p99, "p99": p99, "max": p99}
    rows = [row("h1-keepalive-1k", "mitmd", 9000, 0.040), row("h1-keepalive-1k", "nginx", 5000, 0.072),
            row("h1-keepalive-1k", "mitmdump", 300, 2.6), row("h1-keepalive-1k", "mitmd-1w", 8000, 0.040),
            row("h2-1k", "mitmd", 9000, 0.090), row("h2-1k", "nginx", 5000, 0.060),  # 1.5x: FAIL
            row("h2-1k", "mitmdump", 300, 0.5),  # only 5.6x: FAIL
            row("h2-1k", "mitmd-1w", 8000, 0.080),  # 2 workers 1.125x of 1: FAIL
            row("newconn-full", "mitmd", 500, 0.68), row("newconn-full", "nginx", 290, 1.67),
            row("newconn-full", "mitmdump", 40, 8.0),  # 11.8x, not 15x: FAIL
            row("rev-newconn-full", "mitmd-rev", 600, 0.40),
            row("hosts-cold", "mitmd", 400, 1.3), row("hosts-warm", "mitmd", 500, 1.2),
            row("hosts-cold", "mitmd-1w", 300, 1.4), row("hosts-warm", "mitmd-1w", 500, 1.3),
            row("h1-latency-half-max", "direct", 4500, 0.05, latency_us=lat(300, 2000)),
            row("h1-latency-half-max", "mitmd", 4500, 0.05, latency_us=lat(500, 2600)),
            row("h1-latency-half-max", "nginx", 4500, 0.07, latency_us=lat(900, 5000)),
            row("h1-keepalive-1k", "nginx-1w", 4000, 0.060), row("h2-1k", "nginx-1w", 4000, 0.040)]
    return {"rows": rows, "latency": {"rate": 4500, "max_rps": 9000, "max_rps_source": "x",
                                      "p99_added_over_direct_ms": 0.6,
                                      "p50_added_over_direct_ms": 0.2,
                                      "nginx_p99_added_over_direct_ms": 3.0,
                                      "nginx_p99_added_per_slice_ms": [3.0, 2.5, 4.0],
                                      "nginx_p50_added_over_direct_ms": 0.6},
            "idle": [{"target": "mitmd", "established": 10000, "rss_kib_per_conn": 21.7},
                     {"target": "mitmd-1w", "failed": "did not start"}],
            "longpath": [{"key": "h2-download-10m-50ms", "what": "HTTP/2 10 MB download",
                          "runs": 3, "limit": 0.9, "direct_MBps": 11.7, "mitmd_MBps": 11.5,
                          "ratio": 11.5 / 11.7},
                         {"key": "h2-download-10m-50ms-200mbit", "what": "at 200 Mbit/s",
                          "runs": 3, "limit": None, "failed": "exit 1: FAIL | curl"}],
            "micro": {"forge": {"forges_per_sec": 9000, "us_per_forge": 111.1, "certs": 18000,
                                "seconds": 2.0, "ca": "ecdsa", "der_bytes_mean": 466},
                      "certcache": [{"bench": "certcache_lookup", "lookups_per_sec": 3.5e6,
                                     "ns_per_lookup": 280.0, "keys": 1000, "names_per_key": 3,
                                     "der_bytes": 1024}]}}


class Targets(unittest.TestCase):
    def test_each_target_checked(self):
        t = {x["target"]: x for x in report.targets(full_result())}
        get = lambda prefix: next(v for k, v in t.items() if k.startswith(prefix))
        self.assertTrue(get("CPU per request, HTTP/1.1 keep-alive 1 KiB: mitmd / nginx")["pass"])
        self.assertAlmostEqual(get("CPU per request, HTTP/1.1 keep-alive 1 KiB: mitmd / nginx")
                               ["value"], 0.040 / 0.072)
        self.assertTrue(get("CPU per request, HTTP/1.1 keep-alive 1 KiB: mitmdump")["pass"])
        self.assertFalse(get("CPU per request, HTTP/2 1 KiB: mitmd / nginx")["pass"])
        self.assertFalse(get("CPU per request, HTTP/2 1 KiB: mitmdump")["pass"])
        self.assertTrue(get("CPU per connection, newconn-full")["pass"])
        self.assertIsNone(get("CPU per connection, newconn-resume")["pass"])  # no rows
        self.assertAlmostEqual(get("Cold certcache throughput / warm, mitmd")["value"], 0.8)
        self.assertTrue(get("Cold certcache throughput / warm, mitmd")["pass"])  # 0.80 is in
        self.assertFalse(get("Cold certcache throughput / warm, mitmd 1 worker")["pass"])
        self.assertTrue(get("Master forges")["pass"])
        self.assertTrue(get("Latency p99 added")["pass"])
        self.assertIn("0.60 ms (p99 2.60 vs 2.00 ms at 4,500 req/s)",
                      get("Latency p99 added")["measured"])
        self.assertTrue(get("RSS per idle intercepted connection, mitmd")["pass"])
        self.assertIsNone(get("RSS per idle intercepted connection, mitmd 1 worker")["pass"])
        cores = get("CPU per request, 2 workers / 1 worker")
        self.assertFalse(cores["pass"])
        self.assertAlmostEqual(cores["value"], 0.090 / 0.080)
        self.assertIn("h2-1k 1.12x", cores["measured"])
        ref = get("Reference: nginx re-encrypting proxy, CPU per request, 2 workers")
        self.assertTrue(ref["reference"])
        self.assertIsNone(ref["pass"])
        self.assertAlmostEqual(ref["value"], 0.060 / 0.040)  # h2-1k is the worst
        self.assertIn("h1-keepalive-1k 1.20x; h2-1k 1.50x", ref["measured"])
        ref = get("Reference: nginx re-encrypting proxy, p99 added")
        self.assertTrue(ref["reference"])
        self.assertAlmostEqual(ref["value"], 3.0)
        self.assertIn("3.00 ms (p99 5.00 vs 2.00 ms; median of the slices' 3.00, 2.50, 4.00)",
                      ref["measured"])
        # Issue 14's rows: newconn-full in ms (CONNECT 0.68 FAIL, reverse 0.40 PASS), against
        # mitmdump (11.8x FAIL), p99 added against nginx's (0.2x PASS), the long path (PASS).
        nc = get("CPU per connection, full handshakes both sides, CONNECT")
        self.assertFalse(nc["pass"])
        self.assertEqual(nc["measured"], "0.680 ms")
        self.assertTrue(get("CPU per connection, full handshakes both sides, reverse")["pass"])
        md = get("CPU per connection, newconn-full: mitmdump / mitmd")
        self.assertFalse(md["pass"])
        self.assertAlmostEqual(md["value"], 8.0 / 0.68)
        self.assertIn("1/15 would be 0.533 ms", md["measured"])
        p99 = get("Latency p99 added over direct: mitmd / nginx")
        self.assertTrue(p99["pass"])
        self.assertAlmostEqual(p99["value"], 0.2)
        lp = get("Long path: HTTP/2 10 MB download")
        self.assertTrue(lp["pass"])
        self.assertIn("0.983x (11.50 vs 11.70 MB/s, median of 3)", lp["measured"])
        self.assertFalse(any(k.startswith("Long path: at 200") for k in t))  # reference row

    def test_p99_ratio_needs_a_positive_nginx_figure(self):
        res = full_result()
        res["latency"]["nginx_p99_added_over_direct_ms"] = -0.1
        t = {x["target"]: x for x in report.targets(res)}
        self.assertIsNone(t["Latency p99 added over direct: mitmd / nginx re-encrypting "
                            "proxy"]["pass"])

    def test_longpath_rows(self):
        self.assertEqual(longpath.parse_result(
            "CHECK: x\nRESULT direct_MBps=11.73 mitmd_MBps=11.56 ratio=0.985\nPASS (7.0s)\n"),
            (11.73, 11.56, 0.985))
        self.assertIsNone(longpath.parse_result("FAIL: delayline did not start\n"))
        md = "\n".join(longpath.markdown(full_result()["longpath"]))
        self.assertIn("| HTTP/2 10 MB download | 3 | 11.70 | 11.50 | 0.983x | >= 0.90x |", md)
        self.assertIn("| at 200 Mbit/s | 3 | - | - | failed: exit 1: FAIL \\| curl | - |", md)
        failed = full_result()
        failed["longpath"][0] = dict(failed["longpath"][0], failed="no result after 300 s")
        t = {x["target"]: x for x in report.targets(failed)}
        lp = next(v for k, v in t.items() if k.startswith("Long path"))
        self.assertIsNone(lp["pass"])

    def test_missing_figures_are_not_measured(self):
        for t in report.targets({"rows": [], "idle": []}):
            self.assertIsNone(t["pass"], t["target"])
            self.assertIsNone(t["value"], t["target"])

    def test_markdown_sections(self):
        res = result_set()
        extra = full_result()
        res.update(latency=extra["latency"], micro=extra["micro"])
        res["targets"] = report.targets(extra)
        md = report.markdown(res)
        self.assertIn("open loop at R = 4,500 req/s, half of mitmd's maximum of 9,000 req/s", md)
        self.assertIn("mitmd: p99 added over direct 0.60 ms", md)
        self.assertIn("nginx's re-encrypting proxy at the same rate: p99 added 3.00 ms "
                      "(3.00, 2.50, 4.00 ms)", md)
        self.assertIn("mitmd-bench-forge: 9,000 leaf certificates/s (111.1 us each", md)
        self.assertIn("mitmd-bench-certcache certcache_lookup: 3,500,000 lookups/s", md)
        lines = md.splitlines()
        i = lines.index("| target | limit | measured | result |")
        body = lines[i + 2: i + 2 + len(res["targets"])]
        self.assertEqual(len(body), len(res["targets"]))
        self.assertTrue(any(l.endswith("| **FAIL** |") for l in body))
        self.assertTrue(any(l.endswith("| PASS |") for l in body))
        self.assertTrue(any(l.endswith("| not measured |") for l in body))
        self.assertTrue(any(l.endswith("| reference |") for l in body))


class LatencySlices(unittest.TestCase):
    def test_merge_takes_medians_and_sums(self):
        import suite
        lat = lambda p50, p99: {"p50": p50, "p90": p99, "p99": p99, "max": p99 * 2}
        rows = [row("l", "mitmd", 100.0, 0.1, requests=10, errors=1, others_cores=0.5,
                    peak_rss_kib=10, latency_us=lat(1.0, 30.0)),
                row("l", "mitmd", 200.0, 0.2, requests=20, errors=0, others_cores=0.1,
                    peak_rss_kib=30, latency_us=lat(3.0, 10.0)),
                row("l", "mitmd", 300.0, 0.3, requests=30, errors=0, others_cores=0.3,
                    peak_rss_kib=20, latency_us=lat(2.0, 20.0))]
        m = suite.merge_slices(rows)
        self.assertEqual(m["requests"], 60)
        self.assertEqual(m["errors"], 1)
        self.assertAlmostEqual(m["rps"], 200.0)
        self.assertAlmostEqual(m["cpu_s_per_1k"], 0.2)
        self.assertAlmostEqual(m["others_cores"], 0.3)
        self.assertEqual(m["peak_rss_kib"], 30)
        self.assertEqual(m["latency_us"], {"p50": 2.0, "p90": 20.0, "p99": 20.0, "max": 40.0})
        self.assertEqual(len(m["slices"]), 3)
        self.assertNotIn("failed", m)
        rows[1]["failed"] = "boom"
        m = suite.merge_slices(rows)
        self.assertIn("1 of 3 slices failed: boom", m["failed"])
        self.assertEqual(m["requests"], 60)
        self.assertEqual(suite.median([3, 1, 2]), 2)
        self.assertEqual(suite.median([4, 1, 2, 3]), 2.5)


class BenchArgv(unittest.TestCase):
    def setUp(self):
        import types
        import suite
        self.suite = suite
        a = types.SimpleNamespace(quick=True, duration=None, idle_conns=0, mitmd="m",
                                  bench="mb")
        self.run_ = suite.Run(a)
        self.t = {"cafile": "ca.pem", "connect": 443, "proxy": 8080}

    def tearDown(self):
        shutil.rmtree(self.run_.dir, ignore_errors=True)

    def sc(self, key):
        return next(s for s in self.suite.SCENARIOS if s.key == key)

    def test_cold_warmup_uses_other_names(self):
        argv = self.run_.bench_argv(self.t, self.sc("hosts-cold"), 1, "j", True)
        self.assertEqual(argv[argv.index("--host") + 1], "w%d.bench.test")
        argv = self.run_.bench_argv(self.t, self.sc("hosts-cold"), 1, "j", False)
        self.assertEqual(argv[argv.index("--host") + 1], "h%d.bench.test")

    def test_warm_reuses_the_cold_names(self):
        sc = self.sc("hosts-warm")
        names = [s.key for s in self.suite.SCENARIOS]
        self.assertEqual(names.index("hosts-warm"), names.index("hosts-cold") + 1)
        self.assertEqual(self.run_.hosts_warm_count("mitmd"), self.suite.HOSTS_WARM_PRIME)
        self.run_.rows.append(row("hosts-cold", "mitmd", 400, 1.3, requests=2345))
        self.run_.rows.append(row("hosts-cold", "nginx", 0, None, requests=0, failed="x"))
        self.assertEqual(self.run_.hosts_warm_count("mitmd"), 2345)
        self.assertEqual(self.run_.hosts_warm_count("nginx"), self.suite.HOSTS_WARM_PRIME)
        argv = self.run_.bench_argv(self.t, sc, 120, "j", True, 2345, 2345)
        self.assertEqual(argv[argv.index("--hosts") + 1], "2345")
        self.assertEqual(argv[argv.index("-n") + 1], "2345")
        self.assertEqual(argv[argv.index("--host") + 1], "h%d.bench.test")  # not w%d
        self.assertEqual(argv[argv.index("--proxy") + 1], "127.0.0.1:8080")
        self.assertNotIn(None, argv)


class AB(unittest.TestCase):
    def cell(self, sc, target, rnd, cpu_s, requests, **kw):
        r = {"scenario": sc, "target": target, "round": rnd, "cpu_s": cpu_s,
             "requests": requests, "rps": requests / 2.0, "others_cores": 0.1}
        r.update(kw)
        return r

    def test_order_alternates(self):
        import ab
        self.assertEqual(ab.order(0, 0), ["baseline", "candidate"])
        self.assertEqual(ab.order(0, 1), ["candidate", "baseline"])
        self.assertEqual(ab.order(1, 0), ["candidate", "baseline"])
        # over two rounds every scenario runs in both orders
        for i in range(7):
            self.assertNotEqual(ab.order(0, i), ab.order(1, i))

    def test_summary_pools_rounds_and_flags(self):
        import ab
        rows = [self.cell("a", "baseline", 0, 1.0, 1000), self.cell("a", "candidate", 0, 1.2, 1000),
                self.cell("a", "baseline", 1, 1.0, 3000), self.cell("a", "candidate", 1, 3.0, 3000),
                self.cell("b", "baseline", 0, 2.0, 1000), self.cell("b", "candidate", 0, 2.08, 1000),
                self.cell("c", "baseline", 0, 1.0, 1000),
                self.cell("c", "candidate", 0, 0.0, 0, failed="no successful request: x"),
                self.cell("d", "baseline", 0, 1.0, 1000), self.cell("d", "candidate", 0, 0.9, 1000,
                                                                    others_cores=0.7)]
        s = {e["scenario"]: e for e in ab.summarize(rows, ["a", "b", "c", "d"])}
        a = s["a"]
        self.assertAlmostEqual(a["baseline_cpu_s_per_1k"], 2.0 / 4000 * 1000)
        self.assertAlmostEqual(a["candidate_cpu_s_per_1k"], 4.2 / 4000 * 1000)
        self.assertAlmostEqual(a["ratio"], 2.1)
        self.assertEqual([round(x, 2) for x in a["round_ratios"]], [1.2, 3.0])
        self.assertTrue(a["flagged"])
        self.assertTrue(a["every_round"])
        self.assertEqual(a["rounds"], 2)
        self.assertAlmostEqual(s["b"]["ratio"], 1.04)
        self.assertFalse(s["b"]["flagged"])
        self.assertFalse(s["b"]["every_round"])
        rows[1]["cpu_s"] = 1.01  # round 1 now 1.01x: pooled 4.01/4000 vs 2/4000 still flagged
        e = ab.summarize(rows, ["a"])[0]
        self.assertTrue(e["flagged"])
        self.assertFalse(e["every_round"])
        self.assertIsNone(s["c"]["ratio"])
        self.assertFalse(s["c"]["flagged"])
        self.assertIn("no successful request", s["c"]["failed"])
        self.assertAlmostEqual(s["d"]["ratio"], 0.9)
        self.assertEqual(s["d"]["others_cores_max"], 0.7)

    def test_markdown(self):
        import ab
        rows = [self.cell("a", "baseline", 0, 1.0, 1000), self.cell("a", "candidate", 0, 1.2, 1000),
                self.cell("b", "baseline", 0, 1.0, 1000), self.cell("b", "candidate", 0, 0.95, 1000)]
        res = result_set()
        res.update(quick=True, ab={"baseline": "main~1 (abc)", "candidate": "def", "rounds": 1,
                                   "limit": ab.AB_LIMIT, "build": "Release",
                                   "summary": ab.summarize(rows, ["a", "b"]), "forge": {}},
                   notes=["n1"])
        md = ab.markdown(res)
        self.assertIn("Baseline: main~1 (abc). Candidate: def.", md)
        self.assertIn("| a | 1.000 | 1.200 | **1.200x** | 1.20 | 500 | 500 | 0.10 | "
                      "**above 1.05x in every round** |", md)
        self.assertIn("| b | 1.000 | 0.950 | 0.950x | 0.95 |", md)
        self.assertIn("Rows above 1.05x: a.", md)
        # a reason with line breaks (a server's log tail) stays inside its table row
        rows.append(self.cell("c", "baseline", 0, 0.0, 0,
                              failed="baseline-rev did not start: exited with 2:\nmitmd: "
                                     "unknown option --mode"))
        rows.append(self.cell("c", "candidate", 0, 1.0, 1000))
        res["ab"]["summary"] = ab.summarize(rows, ["a", "b", "c"])
        line = next(l for l in ab.markdown(res).splitlines() if l.startswith("| c |"))
        self.assertIn("failed: round 1: baseline-rev did not start: exited with 2: mitmd:", line)
        self.assertIn("- n1", md)


H2LOAD_OUT = """starting benchmark...
spawning thread #0: 16 total client(s). Timing-based test with 300ms of warm-up time and 1500ms of main duration for measurements.
Warm-up started for thread #0.
progress: 10% of clients started
TLS Protocol: TLSv1.3
Cipher: TLS_AES_128_GCM_SHA256
Server Temp Key: X25519 253 bits
Application protocol: h2
Warm-up phase is over for thread #0.
Main benchmark duration is started for thread #0.
Main benchmark duration is over for thread #0. Stopping all clients.
Stopped all clients for thread #0

finished in 1.83s, 1212.00 req/s, 118.66MB/s
requests: 1818 total, 1818 started, 1818 done, 1817 succeeded, 1 failed, 1 errored, 0 timeout
status codes: 1816 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 16.88MB (17698956) total, 2.91MB (3051708) headers (space savings 0.00%), 16.29MB (17076224) data
                     min         max         mean         sd        +/- sd
time for request:      263us     32.72ms      6.78ms      4.87ms    66.42%
time for connect:    11.24ms     44.37ms     24.83ms     10.58ms    62.50%
time to 1st byte:        0us         0us         0us         0us     0.00%
req/s           :     119.25      187.67      146.27       22.58    53.13%
"""


class H2load(unittest.TestCase):
    def test_argv_timed_and_counted(self):
        import h2load
        a = h2load.argv("h2load", 8443, "/1k", ["--h1", "-c", "32"], "/t/l.log", seconds=2.5,
                        warm_s=0.3)
        self.assertEqual(a, ["h2load", "-t", "2", "--log-file", "/t/l.log", "--h1", "-c", "32",
                             "-D", "2500ms", "--warm-up-time", "300ms",
                             "--connect-to", "127.0.0.1:8443",
                             "https://www.bench.test:8443/1k"])
        a = h2load.argv("h2load", 9, "/1k", ["-H", "Connection: close"], "l", requests=160)
        self.assertIn("-n", a)
        self.assertEqual(a[a.index("-n") + 1], "160")
        self.assertNotIn("-D", a)
        self.assertNotIn("--warm-up-time", a)

    def test_parse_output(self):
        import h2load
        p = h2load.parse_output(H2LOAD_OUT)
        self.assertAlmostEqual(p["finished_s"], 1.83)
        self.assertEqual((p["total"], p["succeeded"], p["failed"], p["errored"]),
                         (1818, 1817, 1, 1))
        self.assertEqual(p["status"]["2xx"], 1816)
        self.assertEqual(p["protocol"], "h2")
        self.assertAlmostEqual(p["request"]["min"], 263.0)
        self.assertAlmostEqual(p["request"]["max"], 32720.0)
        self.assertAlmostEqual(p["connect"]["mean"], 24830.0)
        with self.assertRaises(ValueError):
            h2load.parse_output("h2load: could not connect\n")

    def test_log_percentiles_and_summary(self):
        import h2load
        d = tempfile.mkdtemp()
        try:
            log = os.path.join(d, "l.log")
            with open(log, "w") as f:
                for i in range(1, 101):  # 100 responses of 1..100 ms
                    f.write("1796216587209814\t200\t%d\n" % (i * 1000))
                f.write("1796216587209814\t0\t500\n")  # head in the warm-up: a response
                f.write("1796216587209814\t-1\t900\n")  # failed stream
                f.write("1796216587209814\t502\t700\n")
                f.write("garbage\n")
            lat, bad = h2load.read_log(log)
            self.assertEqual((len(lat), bad), (101, 2))
            pct = h2load.percentiles([x * 1000.0 for x in range(1, 101)])
            self.assertEqual((pct["p50"], pct["p90"], pct["p99"], pct["max"]),
                             (50000.0, 90000.0, 99000.0, 100000.0))
            self.assertIsNone(h2load.percentiles([]))
            s, lat = h2load.summary(H2LOAD_OUT, log, seconds=1.5)
            self.assertEqual(s["requests"], 101)
            self.assertEqual(s["errors"], 2)  # the log's 2 exceed h2load's 1 failed
            self.assertAlmostEqual(s["rps"], 101 / 1.5)
            self.assertEqual(s["protocol"], "h2")
            self.assertIn("h2load: 1 failed (1 errored, 0 timeout)", s["first_error"])
            self.assertEqual(len(lat), 101)
            s, _ = h2load.summary(H2LOAD_OUT, log)  # counted: h2load's elapsed time
            self.assertAlmostEqual(s["rps"], 101 / 1.83)
        finally:
            shutil.rmtree(d)

    def test_first_error_keeps_an_unknown_line(self):
        import h2load
        text = H2LOAD_OUT.replace("finished in", "SSL/TLS handshake failed\nfinished in")
        s, _ = h2load.summary(text, os.devnull, seconds=1.0)
        self.assertIn("SSL/TLS handshake failed", s["first_error"])
        self.assertEqual(s["requests"], 0)
        self.assertEqual(s["errors"], 1)


class ReversePhase(unittest.TestCase):
    def test_merge_pooled(self):
        import suite
        lat = lambda p50, p99: {"p50": p50, "p90": p99, "p99": p99, "max": p99}
        rows = [row("r", "mitmd-rev", 100.0, 0.2, requests=1000, cpu_s=0.2, origin_cpu_s=0.1,
                    errors=0, others_cores=0.4, peak_rss_kib=10, latency_us=lat(1, 5),
                    _lat=[1000.0] * 99 + [9000.0], bench={"x": 1}, bench_args="a"),
                row("r", "mitmd-rev", 300.0, 0.1, requests=3000, cpu_s=0.3, origin_cpu_s=0.2,
                    errors=2, first_error="e", others_cores=0.2, peak_rss_kib=30,
                    latency_us=lat(2, 6), _lat=[2000.0] * 3000, bench={"x": 2},
                    bench_args="b")]
        m = suite.merge_pooled(rows)
        self.assertEqual(m["requests"], 4000)
        self.assertAlmostEqual(m["cpu_s_per_1k"], 0.5 / 4000 * 1000)  # pooled, not 0.15
        self.assertAlmostEqual(m["origin_cpu_s_per_1k"], 0.3 / 4000 * 1000)
        self.assertAlmostEqual(m["rps"], 200.0)
        self.assertEqual(m["errors"], 2)
        self.assertEqual(m["first_error"], "e")
        self.assertAlmostEqual(m["others_cores"], 0.3)
        self.assertEqual(m["peak_rss_kib"], 30)
        self.assertEqual(m["latency_us"]["p50"], 2000.0)  # over all 3,100 latencies
        self.assertEqual(m["latency_us"]["max"], 9000.0)
        self.assertNotIn("_lat", m)
        self.assertNotIn("bench", m)
        self.assertEqual([x["bench"] for x in m["slices"]], [{"x": 1}, {"x": 2}])
        self.assertNotIn("failed", m)
        # without kept latencies: the median slice's; a failed slice is said
        del rows[0]["_lat"]
        rows.append(row("r", "mitmd-rev", None, None, requests=0, failed="boom"))
        m = suite.merge_pooled(rows)
        self.assertEqual(m["requests"], 4000)
        self.assertEqual(m["latency_us"]["p99"], 6)
        self.assertIn("1 of 3 slices failed: boom", m["failed"])
        m = suite.merge_pooled(rows[2:])
        self.assertEqual(m["failed"], "boom")
        self.assertEqual(m["requests"], 0)

    def test_scenarios(self):
        import suite
        keys = [s.key for s in suite.REVERSE_SCENARIOS]
        self.assertEqual(keys, ["h2load-h1-1k", "h2load-h2-1k", "h2load-newconn",
                                "h2load-h1-100k", "rev-newconn-full", "mode-h1-1k"])
        self.assertEqual(len(set(keys) & {s.key for s in suite.SCENARIOS}), 0)
        self.assertTrue(all(s.reverse for s in suite.REVERSE_SCENARIOS))
        self.assertFalse(any(s.reverse or s.driver != "mitmd-bench" for s in suite.SCENARIOS))
        nc = next(s for s in suite.REVERSE_SCENARIOS if s.key == "h2load-newconn")
        self.assertTrue(nc.per_conn)
        self.assertEqual(nc.nginx_server, "nk")
        self.assertIn("Connection: close", nc.args)
        self.assertEqual(suite.MODE_SCENARIO, report.MODE_SCENARIO)
        self.assertEqual({x[0] for x in report.LIKE_FOR_LIKE} | {report.MODE_SCENARIO},
                         set(keys))

    def test_ports(self):
        import types
        import suite
        r = suite.Run(types.SimpleNamespace(quick=True, duration=None, idle_conns=0,
                                            mitmd="m", bench="mb"))
        try:
            sc = {s.key: s for s in suite.REVERSE_SCENARIOS}
            nginx = {"ka": 1, "nk": 2, "proxy": None, "cafile": "c"}
            rev = {"connect": 3, "proxy": None, "cafile": "c"}
            self.assertEqual(r.h2load_port(nginx, sc["h2load-h1-1k"]), 1)
            self.assertEqual(r.h2load_port(nginx, sc["h2load-newconn"]), 2)
            self.assertEqual(r.h2load_port(rev, sc["h2load-newconn"]), 3)
            # mitmd-bench to mitmd in reverse mode: TLS straight to it, no --proxy
            argv = r.bench_argv(rev, sc["mode-h1-1k"], 1, "j", False)
            self.assertNotIn("--proxy", argv)
            self.assertEqual(argv[argv.index("--connect") + 1], "127.0.0.1:3")
            self.assertEqual(argv[argv.index("--host") + 1], "www.bench.test")
            argv = r.bench_argv(nginx, sc["rev-newconn-full"], 1, "j", False)
            self.assertEqual(argv[argv.index("--connect") + 1], "127.0.0.1:2")
            self.assertIn("--new-conn", argv)
            self.assertNotIn("--resume", argv)
        finally:
            shutil.rmtree(r.dir, ignore_errors=True)


class Alternate(unittest.TestCase):
    def test_slices_alternate_and_merge(self):
        # alternate() with the servers and the load generator replaced: the order of the
        # cells, the slice length, and one merged row per scenario and target.
        import types
        import suite
        r = suite.Run(types.SimpleNamespace(quick=True, duration=None, idle_conns=0,
                                            mitmd="m", bench="mb", targets=None,
                                            scenarios=None))
        cells, stopped = [], []
        fake = types.SimpleNamespace(pid=os.getpid())
        r.try_start = lambda key, label, kind, workers, what, scenarios=None: (
            None if key == "broken" else {"proc": fake, "connect": 1, "proxy": None})
        r.verify_tls = lambda t: None
        r.procs.stop = lambda p: stopped.append(p)
        real_settle, suite.settle = suite.settle, lambda *a, **k: None

        def load_row(key, label, kind, t, sc, seconds=None, warm_inside=False):
            cells.append((sc.key, key, seconds, warm_inside))
            return row(sc.key, key, 100.0, 0.1, requests=100, cpu_s=0.01)
        r.load_row = load_row
        try:
            scs = [s for s in suite.REVERSE_SCENARIOS if s.key in ("h2load-h1-1k",
                                                                   "rev-newconn-full")]
            r.alternate([("direct", "d", "direct"), ("nginx", "n", "nginx"),
                         ("mitmd-rev", "m", "mitmd-rev")], scs)
            self.assertEqual([c[1] for c in cells[:6]], ["direct", "nginx", "mitmd-rev",
                                                          "mitmd-rev", "nginx", "direct"])
            self.assertEqual({c[2] for c in cells}, {r.row_s / suite.REVERSE_SLICES})
            self.assertTrue(cells[0][3])  # keep-alive: the generator's own warm-up
            self.assertFalse(cells[-1][3])  # --new-conn: a separate warm-up run
            self.assertEqual([(x["scenario"], x["target"], x["requests"]) for x in r.rows],
                             [("h2load-h1-1k", "direct", 200), ("h2load-h1-1k", "nginx", 200),
                              ("h2load-h1-1k", "mitmd-rev", 200),
                              ("rev-newconn-full", "direct", 200),
                              ("rev-newconn-full", "nginx", 200),
                              ("rev-newconn-full", "mitmd-rev", 200)])
            self.assertEqual(len(stopped), 2)  # nginx and mitmd-rev; never the origin
            cells.clear()
            r.rows.clear()
            mode = [s for s in suite.REVERSE_SCENARIOS if s.key == suite.MODE_SCENARIO]
            r.alternate([("mitmd", "g", "mitmd"), ("mitmd-rev", "m", "mitmd-rev")], mode,
                        suite.MODE_SLICES, 0.5)
            self.assertEqual([c[1] for c in cells], ["mitmd", "mitmd-rev", "mitmd-rev",
                                                     "mitmd", "mitmd", "mitmd-rev",
                                                     "mitmd-rev", "mitmd"])
            self.assertEqual({c[2] for c in cells}, {0.5})
            self.assertEqual([x["requests"] for x in r.rows], [400, 400])
        finally:
            suite.settle = real_settle
            shutil.rmtree(r.dir, ignore_errors=True)


class Features(unittest.TestCase):
    """The feature rows (features.py): rule set, counters, on/off ratios, instance wiring."""

    def test_rules_argv_is_the_micro_benchmark_set(self):
        import features
        argv = features.rules_argv()
        self.assertEqual(len(argv), 20)
        self.assertEqual(argv[::2], ["--set"] * 10)
        kinds = [x.split("=", 1)[0] for x in argv[1::2]]
        self.assertEqual(sorted(set(kinds)), ["block_list", "inject_error", "inject_fault",
                                              "inject_latency", "map_remote", "modify_headers"])
        # the same specs as tests/unit/bench_flowfilter.c, but for the header rule's host
        with open(os.path.join(HERE, "..", "..", "tests", "unit", "bench_flowfilter.c")) as f:
            c = f.read()
        for name, spec in features.RULES_10:
            want = spec.replace("bench\\.test", "api.test")
            self.assertIn('{"%s", "%s"}' % (name, want.replace("\\", "\\\\")), c)

    def test_rule_counters(self):
        import features
        text = ("# TYPE mitmd_rule_applications_total counter\n"
                'mitmd_rule_applications_total{rule="modify_headers"} 4120\n'
                'mitmd_rule_applications_total{rule="block_list"} 0\n'
                'mitmd_requests_total{method="GET"} 9\n')
        self.assertEqual(features.rule_counters(text), {"modify_headers": 4120})
        self.assertEqual(features.rule_counters(""), {})

    def test_count_records(self):
        import features
        d = tempfile.mkdtemp()
        try:
            path = d + "/r.jsonl"
            with open(path, "w") as f:
                f.write('{"request": {}, "response": {"status": 200}}\n{"event": "x"}\n')
            self.assertEqual(features.count_records(path), 1)
            self.assertEqual(features.count_records(d + "/none"), 0)
        finally:
            shutil.rmtree(d)

    def test_on_off_targets_and_markdown(self):
        import features
        rows = [row("rules-10", "mitmd", 7000, 0.030), row("rules-10", "mitmd-rules", 6800, 0.036),
                row("server-replay", "mitmd", 7000, 0.040),
                row("server-replay", "mitmd-replay", 9000, 0.012)]
        f = features.on_off(rows)
        self.assertAlmostEqual(f["rules"][2], 1.2)
        self.assertAlmostEqual(f["replay"][2], 0.3)
        t = features.targets(rows, report._check)
        self.assertEqual(t[0]["pass"], False)  # 1.20x > 1.10x
        self.assertIn("1.20x (0.036 vs 0.030", t[0]["measured"])
        self.assertTrue(t[1]["reference"])
        rows[1]["cpu_s_per_1k"] = 0.031
        self.assertTrue(features.targets(rows, report._check)[0]["pass"])
        md = "\n".join(features.markdown(rows))
        self.assertIn("on / off 1.03x (limit 1.10x)", md)
        self.assertIn("replay / live 0.30x", md)
        self.assertEqual(features.markdown([]), [])
        rows[1]["failed"] = "boom"
        self.assertIsNone(features.on_off(rows)["rules"][2])
        # the full report carries both
        res = result_set()
        res["rows"] = rows[:1] + rows[2:]
        names = [x["target"] for x in report.targets(res)]
        self.assertTrue(any("10 rules on / off" in n for n in names))

    def test_ab_on_off(self):
        import ab
        import features
        summary = [{"scenario": "h1-keepalive-1k", "baseline_cpu_s_per_1k": 0.04,
                    "candidate_cpu_s_per_1k": 0.05},
                   {"scenario": "rules-10", "baseline_cpu_s_per_1k": 0.042,
                    "candidate_cpu_s_per_1k": None}]
        f = features.ab_on_off(summary)
        self.assertAlmostEqual(f["rules"]["baseline"], 1.05)
        self.assertIsNone(f["rules"]["candidate"])
        self.assertNotIn("replay", f)
        md = "\n".join(features.ab_markdown(f))
        self.assertIn("baseline 1.05x, candidate -", md)
        import suite
        kinds = {s.key: ab.instance_kind(s) for s in suite.SCENARIOS + suite.FEATURE_SCENARIOS +
                 suite.REVERSE_SCENARIOS}
        self.assertEqual(kinds["rules-10"], "mitmd-rules")
        self.assertEqual(kinds["server-replay"], "mitmd-replay")
        self.assertEqual(kinds["mode-h1-1k"], "mitmd-rev")
        self.assertEqual(kinds["h1-keepalive-1k"], "mitmd")

    def run_with_fake_procs(self, fail_metrics=False):
        import types
        import suite
        r = suite.Run(types.SimpleNamespace(quick=True, duration=None, idle_conns=0,
                                            mitmd="m", bench="mb"))
        started = []
        proc = types.SimpleNamespace(pid=1, poll=lambda: 2 if fail_metrics else None)

        def start(name, argv, **kw):
            started.append(list(argv))
            return proc

        def wait_port(name, p, port, timeout=20.0):
            if fail_metrics and any(x.startswith("metrics_listen=") for x in started[-1]):
                raise RuntimeError("m exited with 2:\nmitmd: unknown option 'metrics_listen'")
        r.procs.start, r.procs.wait_port = start, wait_port
        r.origin_port = 4433
        return r, started

    def test_instances_run_with_metrics_and_their_features(self):
        r, started = self.run_with_fake_procs()
        try:
            t = r.start_target("mitmd", "mitmd", None, False)
            self.assertTrue(t["metrics"])
            self.assertIn("metrics_listen=127.0.0.1:%d" % t["metrics"], started[-1])
            self.assertEqual(t["proxy"], int(started[-1][started[-1].index("-p") + 1]))
            t = r.start_target("rules", "mitmd-rules", None, False)
            self.assertIn("modify_headers=/~d bench\\.test/X-Env/load", started[-1])
            self.assertIsNotNone(t["proxy"])
            made = []
            r.make_recording = lambda: (made.append(1), setattr(r, "recording", r.dir))
            t = r.start_target("replay", "mitmd-replay", None, False)
            self.assertEqual(made, [1])
            a = started[-1]
            self.assertEqual(a[a.index("-S") + 1], r.dir)
            self.assertIn("server_replay_reuse=true", a)
            self.assertTrue(any(x.startswith("metrics_listen=") for x in a))
            t = r.start_target("rev", "mitmd-rev", None, False)
            self.assertIsNone(t["proxy"])
            self.assertTrue(any(x.startswith("metrics_listen=") for x in started[-1]))
        finally:
            shutil.rmtree(r.dir, ignore_errors=True)

    def test_old_build_without_metrics_starts_without(self):
        r, started = self.run_with_fake_procs(fail_metrics=True)
        try:
            t = r.start_target("baseline", "mitmd", None, False)
            self.assertIsNone(t["metrics"])
            self.assertEqual(len(started), 2)
            self.assertFalse(any(x.startswith("metrics_listen=") for x in started[1]))
            self.assertTrue(any("without metrics" in n for n in r.notes))
        finally:
            shutil.rmtree(r.dir, ignore_errors=True)


def reverse_rows():
    lat = lambda p50, p99: {"p50": p50, "p90": p99, "p99": p99, "max": p99}
    return [row("h2load-h1-1k", "direct", 6000, 0.04, latency_us=lat(1000, 3000)),
            row("h2load-h1-1k", "nginx", 3000, 0.060, latency_us=lat(2000, 9000)),
            row("h2load-h1-1k", "mitmd-rev", 3600, 0.045, latency_us=lat(1500, 8000)),
            row("h2load-h2-1k", "nginx", 4000, 0.060),
            row("h2load-h2-1k", "mitmd-rev", 6000, 0.024),
            row("h2load-h1-100k", "nginx", 800, 0.2),
            row("h2load-h1-100k", "mitmd-rev", 600, 0.3),
            row("h2load-newconn", "nginx", 150, 1.5),
            row("mode-h1-1k", "mitmd", 7000, 0.030),
            row("mode-h1-1k", "mitmd-rev", 6900, 0.032)]


class ReverseReport(unittest.TestCase):
    def test_ratios(self):
        rows = reverse_rows()
        report.add_ratios(rows)
        r = {(x["scenario"], x["target"]): x["ratios"] for x in rows}
        self.assertAlmostEqual(r[("h2load-h1-1k", "mitmd-rev")]["cpu_vs_nginx"], 0.75)
        self.assertAlmostEqual(r[("h2load-h1-1k", "mitmd-rev")]["rps_vs_nginx"], 1.2)
        self.assertAlmostEqual(r[("h2load-h1-1k", "mitmd-rev")]["rps_vs_direct"], 0.6)
        self.assertAlmostEqual(r[("mode-h1-1k", "mitmd-rev")]["cpu_vs_regular"], 0.032 / 0.030)
        self.assertNotIn("cpu_vs_regular", r[("mode-h1-1k", "mitmd")])
        self.assertIsNone(r[("mode-h1-1k", "mitmd")]["cpu_vs_nginx"])  # no nginx in that row

    def test_targets(self):
        t = {x["target"]: x for x in report.targets({"rows": reverse_rows(), "idle": []})}
        get = lambda prefix: next(v for k, v in t.items() if k.startswith(prefix))
        h1 = get("Like-for-like, reverse mode: CPU per request, HTTP/1.1 keep-alive 1 KiB")
        self.assertFalse(h1["pass"])  # 0.75x > 0.50x
        self.assertAlmostEqual(h1["value"], 0.75)
        self.assertIn("0.75x (0.045 vs 0.060 s/1k req)", h1["measured"])
        self.assertTrue(get("Like-for-like, reverse mode: CPU per request, HTTP/2")["pass"])
        self.assertFalse(get("Like-for-like, reverse mode: CPU per request, HTTP/1.1 "
                             "keep-alive 100 KiB")["pass"])
        nc = get("Like-for-like, reverse mode: CPU per request, one request per connection, "
                 "resumed")
        self.assertTrue(nc["reference"])  # no limit
        self.assertIsNone(nc["value"])  # no mitmd row
        self.assertIsNone(get("Like-for-like, reverse mode: CPU per request, one request per "
                              "connection, full")["value"])
        mode = get("CPU per request, HTTP/1.1 keep-alive 1 KiB (mitmd-bench): reverse mode")
        self.assertTrue(mode["pass"])
        self.assertAlmostEqual(mode["value"], 0.032 / 0.030)
        self.assertEqual(mode["limit"], "<= 1.10x")

    def test_markdown_section(self):
        res = result_set()
        res["rows"] = reverse_rows()
        report.add_ratios(res["rows"])
        md = report.markdown(res)
        lines = md.splitlines()
        i = next(n for n, l in enumerate(lines) if l.startswith("| scenario | client |"))
        body = []
        for l in lines[i + 2:]:
            if not l.startswith("|"):
                break
            body.append(l)
        self.assertEqual([l.split(" | ")[0] for l in body],
                         ["| h2load-h1-1k", "| h2load-h2-1k", "| h2load-newconn",
                          "| h2load-h1-100k"])
        self.assertIn("| h2load-h1-1k | h2load | 0.045 | 0.060 | 0.75x | 3,600 | 3,000 | "
                      "1.20x | 1.50 / 8.00 | 2.00 / 9.00 | <= 0.50x: **FAIL** |", body[0])
        self.assertIn("0.40x", body[1])
        self.assertTrue(body[1].endswith("<= 0.50x: PASS |"))
        self.assertTrue(body[2].endswith("| - |"))  # newconn: no limit, no mitmd row
        self.assertIn("reverse / regular 1.07x (limit 1.10x)", md)
        header = next(l for l in lines if l.startswith("| scenario | target"))
        for l in lines:
            if l.startswith("| h2load-h1-1k | mitmd-rev"):
                self.assertEqual(l.count("|"), header.count("|"))


class Resolver(unittest.TestCase):
    def test_rules(self):
        os.environ["MITMD_BENCH_RESOLVE"] = "*.bench.test=127.0.0.1, exact.example=10.0.0.1"
        sys.modules.pop("mitmdump_resolve", None)
        import mitmdump_resolve as m
        self.assertEqual(m.resolve("www.bench.test"), "127.0.0.1")
        self.assertEqual(m.resolve("H7.Bench.Test."), "127.0.0.1")
        self.assertEqual(m.resolve("bench.test"), "bench.test")  # *.x is not x itself
        self.assertEqual(m.resolve("notbench.test"), "notbench.test")
        self.assertEqual(m.resolve("exact.example"), "10.0.0.1")
        self.assertEqual(m.resolve("a.exact.example"), "a.exact.example")


def serve_tls(ctx, ls, stop):
    """Accepts TLS connections on ls and keeps them open until stop is set."""
    held = []
    ls.settimeout(0.2)
    while not stop.is_set():
        try:
            c, _ = ls.accept()
        except socket.timeout:
            continue
        c.settimeout(5)
        try:
            held.append(ctx.wrap_socket(c, server_side=True))
        except (ssl.SSLError, OSError):
            c.close()
    for c in held:
        c.close()
    ls.close()


def relay_connect(ls, tls_port, stop, seen):
    """A CONNECT proxy that records each target and relays to 127.0.0.1:tls_port."""
    ls.settimeout(0.2)
    conns = []

    def pipe(a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass

    while not stop.is_set():
        try:
            c, _ = ls.accept()
        except socket.timeout:
            continue
        c.settimeout(None)
        head = b""
        while b"\r\n\r\n" not in head:
            d = c.recv(4096)
            if not d:
                break
            head += d
        if not head:
            c.close()
            continue
        seen.append(head.split(b"\r\n", 1)[0])
        u = socket.create_connection(("127.0.0.1", tls_port))
        c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        threading.Thread(target=pipe, args=(c, u), daemon=True).start()
        threading.Thread(target=pipe, args=(u, c), daemon=True).start()
        conns += [c, u]
    for c in conns:
        c.close()
    ls.close()


@unittest.skipIf(shutil.which("openssl") is None, "needs the openssl CLI")
class IdleHold(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp()
        d = cls.dir
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=t",
                        "-addext", "subjectAltName=DNS:www.bench.test",
                        "-keyout", d + "/k.pem", "-out", d + "/c.pem"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cls.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cls.ctx.load_cert_chain(d + "/c.pem", d + "/k.pem")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir)

    def hold(self, extra, n):
        stop = threading.Event()
        tls_ls = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=serve_tls, args=(self.ctx, tls_ls, stop), daemon=True).start()
        seen = []
        prox_ls = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=relay_connect,
                         args=(prox_ls, tls_ls.getsockname()[1], stop, seen),
                         daemon=True).start()
        ports = {"TLS": tls_ls.getsockname()[1], "PROXY": prox_ls.getsockname()[1]}
        argv = [sys.executable, os.path.join(HERE, "idle_hold.py"), "-n", str(n),
                "--deadline", "20", "--inflight", "4"] + [a.format(**ports) for a in extra]
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            res = json.loads(p.stdout.readline())
            self.assertIsNone(p.poll(), "idle_hold must hold until stdin closes")
        finally:
            p.stdin.close()
            p.wait(10)
            p.stdout.close()
            stop.set()
            time.sleep(0.3)  # the server threads close their sockets
        self.assertEqual(p.returncode, 0)
        return res, seen

    def test_direct(self):
        res, _ = self.hold(["--direct", "--server", "127.0.0.1:{TLS}", "--sni",
                            "www.bench.test", "--cafile", self.dir + "/c.pem"], 12)
        self.assertEqual((res["established"], res["failed"]), (12, 0))

    def test_connect(self):
        res, seen = self.hold(["--server", "127.0.0.1:{PROXY}", "--target",
                               "www.bench.test:443", "--sni", "www.bench.test",
                               "--cafile", self.dir + "/c.pem"], 5)
        self.assertEqual((res["established"], res["failed"]), (5, 0))
        self.assertEqual(seen, [b"CONNECT www.bench.test:443 HTTP/1.1"] * 5)

    def test_wrong_name_fails_verification(self):
        res, _ = self.hold(["--direct", "--server", "127.0.0.1:{TLS}", "--sni",
                            "other.example", "--cafile", self.dir + "/c.pem"], 3)
        self.assertEqual(res["established"], 0)
        self.assertGreaterEqual(res["failed"], 3)
        self.assertIn("certificate", res["first_error"])


if __name__ == "__main__":
    unittest.main()
