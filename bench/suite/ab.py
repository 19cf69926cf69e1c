"""ab.py - the A/B run: two mitmd builds (baseline and candidate) in one suite run.

Owns the interleaving (per round, fresh instances of both builds; per scenario, both builds
back to back, the order alternating from cell to cell so that drift cancels), the per-scenario
comparison of CPU per request, and its JSON and markdown. Called by suite.py when
--baseline-mitmd is given (bench/run --baseline REV). Starts servers only through the Run it
is given, which stops them by PID.
"""
import datetime
import json
import os
import subprocess
import sys
import time

import features  # bench/suite/features.py (suite.py puts this folder on sys.path)
import plot  # bench/suite/plot.py

# A row whose candidate CPU per request is more than this times the baseline's is flagged.
AB_LIMIT = 1.05


def _ok(r):
    return r is not None and not r.get("failed") and r.get("requests", 0) > 0 and \
        r.get("cpu_s") is not None


def order(round_i, cell_i):
    """order returns the build order ("baseline"/"candidate") of cell `cell_i` (a scenario)
    in round `round_i`: baseline first when their sum is even, so that each build goes first
    in half of the cells and, over two rounds, every scenario runs in both orders."""
    if (round_i + cell_i) % 2 == 0:
        return ["baseline", "candidate"]
    return ["candidate", "baseline"]


def summarize(rows, scenarios, limit=AB_LIMIT):
    """summarize compares the builds per scenario. `rows` are load rows (suite.py's row dicts)
    with target "baseline" or "candidate" and a "round"; `scenarios` the scenario keys in
    table order. Returns a list of {scenario, baseline_cpu_s_per_1k, candidate_cpu_s_per_1k,
    ratio, flagged, every_round, round_ratios, baseline_rps, candidate_rps, rounds, others_cores_max,
    failed}: CPU per 1,000 requests pooled over the rounds that succeeded for both builds
    (sum of CPU seconds / sum of requests), ratio = candidate / baseline, flagged when the
    ratio is above `limit`, every_round when each round's own ratio is too; round_ratios
    the same ratio per round (the spread shows the noise). A scenario where no round succeeded for both has None figures and says why."""
    out = []
    for sc in scenarios:
        by_round = {}
        for r in rows:
            if r.get("scenario") == sc and r.get("target") in ("baseline", "candidate"):
                by_round.setdefault(r.get("round", 0), {})[r["target"]] = r
        pooled = {"baseline": [0.0, 0, 0.0], "candidate": [0.0, 0, 0.0]}  # cpu, reqs, rps
        round_ratios, used, failed, others = [], 0, [], []
        for rnd in sorted(by_round):
            pair = by_round[rnd]
            b, c = pair.get("baseline"), pair.get("candidate")
            for r in (b, c):
                if r is not None:
                    others.append(r.get("others_cores") or 0.0)
            if not (_ok(b) and _ok(c)):
                bad = next((r for r in (b, c) if r is not None and not _ok(r)), None)
                failed.append("round %d: %s" % (rnd + 1, (bad or {}).get("failed") or
                                                ("%s: no successful request" %
                                                 (bad or {}).get("target", "a build"))))
                continue
            used += 1
            for key, r in (("baseline", b), ("candidate", c)):
                pooled[key][0] += r["cpu_s"]
                pooled[key][1] += r["requests"]
                pooled[key][2] += r.get("rps") or 0.0
            rb, rc = b["cpu_s"] / b["requests"], c["cpu_s"] / c["requests"]
            round_ratios.append(rc / rb if rb > 0 else None)
        entry = {"scenario": sc, "rounds": used, "round_ratios": round_ratios,
                 "others_cores_max": max(others) if others else None,
                 "failed": "; ".join(failed) or None}
        for key in ("baseline", "candidate"):
            cpu, reqs, rps = pooled[key]
            entry[key + "_cpu_s_per_1k"] = cpu / reqs * 1000 if used and reqs else None
            entry[key + "_rps"] = rps / used if used else None
        b, c = entry["baseline_cpu_s_per_1k"], entry["candidate_cpu_s_per_1k"]
        entry["ratio"] = c / b if b and c is not None else None
        entry["flagged"] = entry["ratio"] is not None and entry["ratio"] > limit
        # Above the limit in every round, not only pooled (one disturbed round can do that).
        entry["every_round"] = entry["flagged"] and all(
            x is not None and x > limit for x in round_ratios)
        out.append(entry)
    return out


def _num(v, fmt):
    return "-" if v is None else fmt.format(v)


def markdown(result):
    """markdown renders an A/B result set (the dict run() writes as JSON): heading, machine
    and builds, the comparison table, the per-cell rows and the notes."""
    m = result["machine"]
    ab = result["ab"]
    out = ["### A/B %srun, %s" % ("quick (--quick) " if result["quick"] else "",
                                  result["date"]), ""]
    out.append("Machine: %s, %d cores, Linux %s, load average %s at the start, %s at the "
               "end. Baseline: %s. Candidate: %s. Both built the same way (%s). %d rounds; "
               "in each, fresh instances of both builds and every scenario run on both, back "
               "to back, the order alternating from cell to cell; each cell %.1f s after a "
               "%.1f s warm-up. Load generator: the current tree's mitmd-bench for both. Suite "
               "wall time %.0f s." % (
                   m["cpu_model"], m["cores"], m["kernel"],
                   _num(m.get("loadavg_1m_at_start"), "{:.2f}"),
                   _num(m.get("loadavg_1m_at_end"), "{:.2f}"), ab["baseline"],
                   ab["candidate"], ab.get("build") or "same flags", ab["rounds"],
                   result["row_seconds"], result["warmup_seconds"],
                   result.get("wall_seconds") or 0))
    out.append("")
    out.append("| scenario | baseline CPU s/1k req | candidate CPU s/1k req | candidate / "
               "baseline | per round | baseline req/s | candidate req/s | others' CPU (max) "
               "| |")
    out.append("|---|---:|---:|---:|---|---:|---:|---:|---|")
    for e in ab["summary"]:
        flag = ""
        if e["flagged"]:
            flag = ("**above %.2fx in every round**" % ab["limit"] if e["every_round"] else
                    "**above %.2fx** pooled, not in every round" % ab["limit"])
        elif e["failed"]:
            flag = "failed: " + e["failed"][:80]
        if e["failed"] and e["flagged"]:
            flag += "; failed: " + e["failed"][:80]
        out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            e["scenario"], _num(e["baseline_cpu_s_per_1k"], "{:.3f}"),
            _num(e["candidate_cpu_s_per_1k"], "{:.3f}"),
            ("**%.3fx**" if e["flagged"] else "%.3fx") % e["ratio"]
            if e["ratio"] is not None else "-",
            ", ".join("-" if x is None else "%.2f" % x for x in e["round_ratios"]) or "-",
            _num(e["baseline_rps"], "{:,.0f}"), _num(e["candidate_rps"], "{:,.0f}"),
            _num(e["others_cores_max"], "{:.2f}"), " ".join(flag.split()).replace("|", "\\|")))
    flagged = [e["scenario"] for e in ab["summary"] if e["flagged"]]
    out.append("")
    out.append("Rows above %.2fx: %s." % (ab["limit"], ", ".join(flagged) if flagged else
                                          "none"))
    for line in features.ab_markdown(ab.get("features") or {}):
        out += ["", line]
    micro = ab.get("forge") or {}
    if micro.get("baseline") or micro.get("candidate"):
        f = lambda x: ("{:,.0f}/s".format(x["forges_per_sec"]) if x and "forges_per_sec" in x
                       else "-")
        out.append("")
        out.append("mitmd-bench-forge (master forges per second, one core): baseline %s, "
                   "candidate %s." % (f(micro.get("baseline")), f(micro.get("candidate"))))
    out.append("")
    for n in result.get("notes") or []:
        out.append("- " + n)
    return "\n".join(out) + "\n"


NOTES = [
    "CPU s/1k req: user+sys seconds of all of that build's mitmd processes (master and "
    "workers, from /proc) per 1,000 successful requests, pooled over the rounds: the sum of "
    "CPU seconds over the sum of requests. The ratio is candidate / baseline; below 1.00x "
    "the candidate is cheaper.",
    "per round: the same ratio for each round alone; their spread is the noise of this "
    "machine for that row. A single flagged row with a wide spread is worth a second run "
    "before it is worth a profile.",
    "others' CPU (max): the most cores that processes outside the bench kept busy during any "
    "cell of the row; well above 0 means the machine was shared (CPU per request moves much "
    "less than req/s with that).",
    "Each round starts both builds fresh (so hosts-cold is cold for both every round); the "
    "scenarios, origin and load generator are the normal suite's (bench/README.md).",
    "The reverse phase's rows (h2load-*, rev-newconn-full, mode-h1-1k) run on a second pair "
    "of instances, both builds in reverse mode (--mode reverse:https://www.bench.test:ORIGIN), "
    "driven by h2load or mitmd-bench as in the full run; a build without reverse mode fails "
    "those rows only.",
    "Every mitmd runs with its metrics endpoint open (--set metrics_listen=127.0.0.1:PORT, "
    "a free port; issue 13: the A/B is measured with metrics on).",
    "rules-10 and server-replay run on instances of their own per build (mitmd with the "
    "10-rule set of the rules micro-benchmark; mitmd -S answering from a recording made at "
    "the start of the run): the rows compare the builds like any other, and the lines "
    "under the table compare each build's feature row with its own h1-keepalive-1k (same "
    "load, same rounds): rules on / off (issue 12's limit 1.10x) and replay / live.",
]


def instance_kind(sc):
    """instance_kind returns the kind of mitmd instance scenario sc runs on in an A/B round:
    its feature instance ("mitmd-rules", "mitmd-replay"), reverse mode, or plain mitmd."""
    return getattr(sc, "instance", None) or ("mitmd-rev" if sc.reverse else "mitmd")


def run(suite, r, baseline_label, candidate_label, rounds, build_desc, baseline_forge=None):
    """run measures the A/B rows on the Run `r` (origin not yet started; `suite` is the
    suite.py module, for its scenarios and helpers) and writes <date>-ab[-quick].{json,md}
    in r.a.results. Returns 0, or 1 with --strict when a cell failed or a row was
    flagged."""
    log = lambda msg: print("bench: %s" % msg, file=sys.stderr, flush=True)
    t_start = time.monotonic()
    machine, commit = suite.machine_info(r.a.repo)
    chosen = lambda s: not r.a.scenarios or s.key in r.a.scenarios
    regular = [s for s in suite.SCENARIOS + suite.FEATURE_SCENARIOS if chosen(s)]
    reverse = [s for s in suite.REVERSE_SCENARIOS if chosen(s)]
    r.scenarios = regular + reverse
    r.start_origin()
    builds = {"baseline": (r.a.baseline_mitmd, "mitmd baseline (%s)" % baseline_label),
              "candidate": (r.a.candidate_mitmd or r.a.mitmd,
                            "mitmd candidate (%s)" % candidate_label)}
    # The reverse-phase scenarios run on each build in reverse mode (--mode reverse:URL), on
    # an instance of their own; a build that has no reverse mode fails those rows only. The
    # feature rows likewise on each build's feature instance (10 rules, or server replay).
    kinds = []
    for sc in r.scenarios:
        if instance_kind(sc) not in kinds:
            kinds.append(instance_kind(sc))
    for rnd in range(rounds):
        inst, why = {}, {}
        try:
            for key in ("baseline", "candidate"):
                binary, label = builds[key]
                for kind in kinds:
                    name = key + kind[len("mitmd"):]  # baseline, baseline-rev, ...
                    try:
                        t = r.start_target(name, kind, None, False, mitmd=binary)
                    except (RuntimeError, OSError) as e:
                        log("%s did not start: %s" % (name, e))
                        why[(key, kind)] = "%s did not start: %s" % (
                            name, " ".join(str(e).split())[-200:])
                        continue
                    inst[(key, kind)] = t
                    bad = r.verify_tls(t)
                    if bad is not None:
                        why[(key, kind)] = bad
            for i, sc in enumerate(r.scenarios):
                kind = instance_kind(sc)
                for key in order(rnd, i):
                    binary, label = builds[key]
                    t = inst.get((key, kind))
                    if t is None or (key, kind) in why:
                        r.rows.append({"scenario": sc.key, "target": key, "round": rnd,
                                       "target_label": label, "how": "-", "requests": 0,
                                       "rps": None, "failed": why.get((key, kind)) or
                                       "%s did not start" % key})
                        continue
                    suite.settle(t["proc"].pid, limit=5.0)
                    # Reverse-phase rows as the main run measures them: keep-alive rows with
                    # the load generator's own warm-up.
                    row = r.load_row(key, label, kind, t, sc,
                                     warm_inside=sc.reverse and "--new-conn" not in sc.args)
                    row.pop("_lat", None)
                    row["round"] = rnd
                    if kind == features.RULES_KIND:
                        r.rule_hits(row, t)
                    r.rows.append(row)
                    log("round %d %-9s %-18s %8s req/s  cpu %s s/1k  %s" % (
                        rnd + 1, key, sc.key, row.get("rps") and round(row["rps"]),
                        row.get("cpu_s_per_1k") and round(row["cpu_s_per_1k"], 3),
                        row.get("failed") or ("errors %d" % row.get("errors", 0))))
        finally:
            for t in reversed(list(inst.values())):
                r.procs.stop(t["proc"])
    forge = {}
    seconds = "1" if r.quick else "2"
    for key, path in (("baseline", baseline_forge),
                      ("candidate", r.a.candidate_forge or r.a.forge)):
        if not path:
            continue
        try:
            p = subprocess.run([path, seconds], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=60)
            line = next((x for x in p.stdout.decode(errors="replace").splitlines()
                         if x.startswith("{")), None)
            forge[key] = json.loads(line) if line else {"error": "no JSON line"}
        except (OSError, subprocess.TimeoutExpired, ValueError) as e:
            forge[key] = {"error": str(e)[:200]}
    summary = summarize(r.rows, [s.key for s in r.scenarios])
    now = datetime.datetime.now(datetime.timezone.utc)
    result = {
        "date": now.strftime("%Y-%m-%d %H:%M UTC"),
        "kind": "ab",
        "quick": r.quick,
        "machine": machine,
        "git_commit": commit,
        "load_generator": "mitmd-bench (the current tree's, for both builds), 2 threads",
        "row_seconds": r.row_s,
        "warmup_seconds": r.warm_s,
        "scenarios": {s.key: s.desc for s in r.scenarios},
        "ab": {"baseline": baseline_label, "candidate": candidate_label, "rounds": rounds,
               "limit": AB_LIMIT, "build": build_desc, "summary": summary, "forge": forge,
               "features": features.ab_on_off(summary)},
        "rows": r.rows,
        "notes": NOTES + r.notes,
    }
    machine["loadavg_1m_at_end"] = suite.loadavg()
    result["wall_seconds"] = round(time.monotonic() - t_start, 1)
    md = markdown(result)
    os.makedirs(r.a.results, exist_ok=True)
    stem = now.strftime("%Y-%m-%dT%H%M%SZ") + "-ab" + ("-quick" if r.quick else "")
    with open(os.path.join(r.a.results, stem + ".json"), "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    md = plot.attach(os.path.join(r.a.results, stem + ".json"), md)  # SVGs beside it
    with open(os.path.join(r.a.results, stem + ".md"), "w") as f:
        f.write(md)
    print(md)
    print("bench: wrote %s/%s.{json,md} in %.0f s" % (r.a.results, stem,
                                                      result["wall_seconds"]),
          file=sys.stderr)
    bad = [e for e in summary if e["flagged"] or e["failed"]]
    return 1 if bad and r.a.strict else 0
