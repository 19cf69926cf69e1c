#!/usr/bin/env python3
"""test_plot.py - plot.py turns a suite result into two SVGs that name every scenario and
every system; rounds averaged, failed rows left out (skipped without gnuplot)."""
import json
import os
import shutil
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import plot  # noqa: E402


def row(scen, target, cpu, p50, p99):
    return {"scenario": scen, "target": target, "target_label": target.upper(), "requests": 100,
            "cpu_s_per_1k": cpu, "latency_us": {"p50": p50, "p90": (p50 + p99) / 2, "p99": p99}}


@unittest.skipIf(shutil.which("gnuplot") is None, "gnuplot not installed")
class PlotTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="mitmd-plot-test.")
        self.json = os.path.join(self.dir, "r.json")
        rows = [row("h1-keepalive-1k", "mitmd", 0.03, 900, 4000),
                row("h1-keepalive-1k", "nginx", 0.05, 1500, 7000),
                row("newconn-full", "mitmd", 0.60, 9000, 30000),
                row("newconn-full", "nginx", 1.40, 12000, 41000),
                # a second round of the same row is averaged; a failed row is left out
                row("newconn-full", "mitmd", 0.70, 9000, 30000),
                dict(row("h2-1k", "nginx", 0.1, 1, 2), failed="did not start", requests=0)]
        with open(self.json, "w") as f:
            json.dump({"rows": rows}, f)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_rows_averaged_in_one_order(self):
        rows = plot.load_rows(self.json)
        self.assertEqual(list(rows), ["h1-keepalive-1k", "newconn-full"])
        self.assertEqual(list(rows["newconn-full"]), ["MITMD", "NGINX"])
        self.assertAlmostEqual(rows["newconn-full"]["MITMD"]["cpu"], 0.65)

    def test_svgs_name_every_row_and_system(self):
        paths = plot.plot(self.json)
        self.assertEqual([os.path.basename(p) for p in paths], ["r-cpu.svg", "r-latency.svg"])
        for p in paths:
            text = " ".join(t.strip() for t in ET.parse(p).getroot().itertext() if t.strip())
            for name in ("h1-keepalive-1k", "newconn-full", "MITMD", "NGINX"):
                self.assertIn(name, text, f"{os.path.basename(p)} does not name {name}")
            self.assertNotIn("h2-1k", text, "a failed row was drawn")


if __name__ == "__main__":
    unittest.main()
