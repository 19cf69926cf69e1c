#!/usr/bin/env python3
"""plot.py - draws a bench suite result (the JSON bench/run writes) as SVG with gnuplot.

Two pictures next to the JSON: NAME-cpu.svg (proxy CPU per 1,000 requests, one group of bars
per scenario row, one bar per system) and NAME-latency.svg (p50 / p90 / p99 latency per
system, one panel per scenario row). Rows measured over several rounds (A/B runs) are
averaged per system. Usage: plot.py RESULT.json [--out-dir DIR]. Prints the SVG paths; exit 0,
2 when the JSON has no load rows, 77 when gnuplot is not installed (Debian: gnuplot-nox)."""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import OrderedDict


def load_rows(path):
    """load_rows returns OrderedDict scenario -> OrderedDict target label -> averaged row
    figures {cpu, p50, p90, p99}, from rows with requests and no failure."""
    with open(path) as f:
        result = json.load(f)
    acc = OrderedDict()
    for r in result.get("rows", []):
        if r.get("failed") or not r.get("requests") or r.get("latency_us") is None:
            continue
        label = r.get("target_label") or r.get("target")
        per = acc.setdefault(r["scenario"], OrderedDict()).setdefault(label, [])
        lat = r["latency_us"]
        per.append({"cpu": r.get("cpu_s_per_1k"), "p50": lat.get("p50"), "p90": lat.get("p90"),
                    "p99": lat.get("p99")})
    order = []  # one order of systems for every scenario: first appearance in the file
    for targets in acc.values():
        order += [lab for lab in targets if lab not in order]
    out = OrderedDict()
    for scen, targets in acc.items():
        out[scen] = OrderedDict()
        for label in order:
            runs = targets.get(label)
            if not runs:
                continue
            avg = {}
            for k in ("cpu", "p50", "p90", "p99"):
                vals = [x[k] for x in runs if x[k] is not None]
                avg[k] = sum(vals) / len(vals) if vals else None
            out[scen][label] = avg
    return out


def gp_quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def cpu_plot(rows, svg, tmp):
    """cpu_plot writes the grouped bar chart of CPU ms per request (proxy process tree)."""
    labels = []
    for targets in rows.values():
        for lab, v in targets.items():
            if v["cpu"] is not None and lab not in labels:
                labels.append(lab)
    if not labels:
        return False
    data = os.path.join(tmp, "cpu.dat")
    with open(data, "w") as f:
        f.write("scenario " + " ".join(gp_quote(lab) for lab in labels) + "\n")
        for scen, targets in rows.items():
            vals = [targets.get(lab, {}).get("cpu") for lab in labels]
            f.write(gp_quote(scen) + " " + " ".join(
                "%.5f" % v if v is not None else "NaN" for v in vals) + "\n")
    script = "\n".join([
        "set terminal svg size 1100,520 dynamic enhanced font 'sans,11' background rgb 'white'",
        "set output %s" % gp_quote(svg),
        "set title 'Proxy CPU per request (ms, log scale; lower is better)'",
        "set logscale y",
        "set style data histograms", "set style histogram clustered gap 1",
        "set style fill solid 0.85 border -1", "set boxwidth 0.9",
        "set key outside right top", "set grid ytics", "set yrange [0.005:*]",
        "set xtics rotate by -25 scale 0", "set ylabel 'CPU ms per request'",
        "plot for [i=2:%d] %s using i:xtic(1) title columnhead(i)" % (len(labels) + 1,
                                                                     gp_quote(data)),
        ""])
    return run_gnuplot(script, tmp)


def latency_plot(rows, svg, tmp):
    """latency_plot writes one panel per scenario: p50/p90/p99 bars per system (ms)."""
    scens = [s for s, t in rows.items() if any(v["p99"] is not None for v in t.values())]
    if not scens:
        return False
    cols = 2
    nrows = (len(scens) + cols - 1) // cols
    lines = ["set terminal svg size 1100,%d dynamic enhanced font 'sans,10' "
             "background rgb 'white'" % (300 * nrows),
             "set output %s" % gp_quote(svg),
             "set multiplot layout %d,%d title 'Latency percentiles per system (ms; lower is "
             "better)'" % (nrows, cols),
             "set style data histograms", "set style histogram clustered gap 1",
             "set style fill solid 0.85 border -1", "set boxwidth 0.9", "set grid ytics",
             "set yrange [0:*]", "set key top left font ',8'", "set xtics rotate by -20 scale 0 "
             "font ',8'"]
    for n, scen in enumerate(scens):
        data = os.path.join(tmp, "lat%d.dat" % n)
        with open(data, "w") as f:
            f.write("system p50 p90 p99\n")
            for lab, v in rows[scen].items():
                if v["p99"] is None:
                    continue
                f.write("%s %.3f %.3f %.3f\n" % (gp_quote(lab), v["p50"] / 1000.0,
                                                 v["p90"] / 1000.0, v["p99"] / 1000.0))
        lines += ["set title %s" % gp_quote(scen),
                  "plot for [i=2:4] %s using i:xtic(1) title columnhead(i)" % gp_quote(data)]
    lines += ["unset multiplot", ""]
    return run_gnuplot("\n".join(lines), tmp)


def run_gnuplot(script, tmp):
    path = os.path.join(tmp, "plot.gp")
    with open(path, "w") as f:
        f.write(script)
    cp = subprocess.run(["gnuplot", path], capture_output=True, text=True, timeout=60)
    if cp.returncode != 0:
        sys.stderr.write("plot.py: gnuplot failed: %s\n" % cp.stderr.strip()[:500])
        return False
    return True


def plot(result_json, out_dir=None):
    """plot draws the two SVGs for `result_json`; returns their paths (those written)."""
    rows = load_rows(result_json)
    base = os.path.splitext(os.path.basename(result_json))[0]
    out_dir = out_dir or os.path.dirname(os.path.abspath(result_json))
    written = []
    with tempfile.TemporaryDirectory(prefix="mitmd-plot.") as tmp:
        for suffix, fn in (("cpu", cpu_plot), ("latency", latency_plot)):
            svg = os.path.join(out_dir, "%s-%s.svg" % (base, suffix))
            if fn(rows, svg, tmp):
                written.append(svg)
    return written


def attach(json_path, md):
    """attach draws the SVGs of a result written at `json_path` (when gnuplot is installed)
    and returns the markdown `md` with links to them appended; never raises."""
    if shutil.which("gnuplot") is None:
        return md
    try:
        paths = plot(json_path)
    except (OSError, ValueError, subprocess.SubprocessError) as e:
        sys.stderr.write("plot.py: no pictures: %s\n" % e)
        return md
    if not paths:
        return md
    links = "\n".join("![%s](%s)" % (os.path.basename(p), os.path.basename(p)) for p in paths)
    return md.rstrip("\n") + "\n\n## Pictures\n\n" + links + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("result", help="a bench/run result JSON")
    ap.add_argument("--out-dir", help="where the SVGs go (default: next to the JSON)")
    a = ap.parse_args()
    if shutil.which("gnuplot") is None:
        print("plot.py: gnuplot is not installed (Debian package gnuplot-nox)")
        return 77
    if not load_rows(a.result):
        print("plot.py: no load rows with figures in %s" % a.result)
        return 2
    for p in plot(a.result, a.out_dir):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
