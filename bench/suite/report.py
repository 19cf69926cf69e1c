"""report.py - ratios and the markdown table of a bench run.

Owns the derived figures (ratios to the direct baseline and to nginx, per scenario) and the
markdown rendering of a result set (the dict suite.py writes as JSON). Pure functions: no I/O
except where a function says it writes a file.
"""
import re

import features  # bench/suite/features.py (the feature rows' on/off comparisons)
import longpath  # bench/suite/longpath.py (HTTP/2 over a 50 ms round trip)

# Targets compared with nginx (rps only where the worker count matches nginx's).
NGINX_PEERS = {"mitmd": True, "mitmd-1w": False, "mitmdump": True, "mitmd-rev": True}

# The like-for-like rows (mitmd in reverse mode and nginx's reverse proxy driven by the same
# client, same run): (scenario, what, issue 14's limit on mitmd / nginx CPU per request or
# None: reference only).
LIKE_FOR_LIKE = (
    ("h2load-h1-1k", "HTTP/1.1 keep-alive 1 KiB (h2load)", 0.5),
    ("h2load-h2-1k", "HTTP/2 1 KiB (h2load)", 0.5),
    ("h2load-newconn", "one request per connection, resumed (h2load)", None),
    ("h2load-h1-100k", "HTTP/1.1 keep-alive 100 KiB (h2load)", 0.6),
    ("rev-newconn-full", "one request per connection, full handshake (mitmd-bench)", None),
)
# The mode row: mitmd-bench's keep-alive 1 KiB through mitmd in regular mode and in reverse
# mode, alternating; the limit on reverse / regular CPU per request (issue 11).
MODE_SCENARIO = "mode-h1-1k"
MODE_LIMIT = 1.1
# Issue 14: CPU per connection with full handshakes on both sides (ms), and mitmdump's over
# mitmd's on the same row; mitmd's added p99 latency over nginx's (same run, same rate).
NEWCONN_MS = 0.45
NEWCONN_VS_MITMDUMP = 15
P99_VS_NGINX = 0.5


def _ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def add_ratios(rows):
    """add_ratios sets row["ratios"] on every load row of `rows` (a list of row dicts with
    scenario, target, rps, cpu_s_per_1k) from the same run:
      rps_vs_direct, cpu_vs_direct: this row / the scenario's direct (origin) row;
      rps_vs_nginx, cpu_vs_nginx: this row / the scenario's nginx row, for mitmd and
      mitmdump (rps_vs_nginx is None for the 1-worker mitmd: not like for like).
    A ratio is None when either side is missing, failed or zero."""
    by_key = {(r["scenario"], r["target"]): r for r in rows}
    for r in rows:
        direct = by_key.get((r["scenario"], "direct"))
        nginx = by_key.get((r["scenario"], "nginx"))
        ok = lambda x: x is not None and x.get("requests", 0) > 0 and not x.get("failed")
        rr = {"rps_vs_direct": None, "cpu_vs_direct": None, "rps_vs_nginx": None,
              "cpu_vs_nginx": None}
        regular = by_key.get((r["scenario"], "mitmd"))
        if r["target"] == "mitmd-rev" and ok(r) and ok(regular):
            # The mode row: reverse mode / regular mode, same load, same run.
            rr["cpu_vs_regular"] = _ratio(r["cpu_s_per_1k"], regular["cpu_s_per_1k"])
            rr["rps_vs_regular"] = _ratio(r["rps"], regular["rps"])
        if r["target"] != "direct" and ok(r) and ok(direct):
            rr["rps_vs_direct"] = _ratio(r["rps"], direct["rps"])
            rr["cpu_vs_direct"] = _ratio(r["cpu_s_per_1k"], direct["cpu_s_per_1k"])
        if r["target"] in NGINX_PEERS and ok(r) and ok(nginx):
            if NGINX_PEERS[r["target"]]:
                rr["rps_vs_nginx"] = _ratio(r["rps"], nginx["rps"])
            rr["cpu_vs_nginx"] = _ratio(r["cpu_s_per_1k"], nginx["cpu_s_per_1k"])
        r["ratios"] = rr


def add_idle_ratios(idle_rows):
    """add_idle_ratios sets kib_per_conn_vs_nginx on every idle row (None for nginx itself
    or when a side is missing)."""
    nginx = next((r for r in idle_rows if r["target"] == "nginx"), None)
    for r in idle_rows:
        r["kib_per_conn_vs_nginx"] = None
        if r["target"] != "nginx" and nginx is not None:
            r["kib_per_conn_vs_nginx"] = _ratio(r.get("rss_kib_per_conn"),
                                                nginx.get("rss_kib_per_conn"))


def _row(rows, scenario, target):
    """_row returns the successful row of (scenario, target) in rows, or None."""
    for r in rows:
        if (r.get("scenario") == scenario and r.get("target") == target and
                r.get("requests", 0) > 0 and not r.get("failed")):
            return r
    return None


def _check(what, limit, value, ok, measured):
    """_check makes one targets entry; value None means not measured (result None); ok None
    makes a reference entry (a peer's figure for comparison: no pass/fail)."""
    if ok is None:
        return {"target": what, "limit": limit, "value": value, "measured": measured,
                "pass": None, "reference": True}
    return {"target": what, "limit": limit, "value": value, "measured": measured,
            "pass": None if value is None else bool(ok(value))}


# The load scenarios whose 2-worker / 1-worker CPU per request is checked (not the
# open-loop latency row: its rate is set by mitmd's 2-worker maximum).
CORE_SCENARIOS = ("h1-keepalive-1k", "h2-1k", "newconn-full", "newconn-resume",
                  "h1-keepalive-100k", "hosts-cold", "hosts-warm")


def targets(result):
    """targets returns the project's performance targets checked against a result set (the
    dict suite.py writes): a list of {target, limit, value, measured, pass}; pass is None
    where the figures are missing (row not run or failed). mitmd means the default-workers
    instance unless the entry says 1 worker."""
    rows = result.get("rows", [])
    out = []

    def cpu(scenario, target):
        r = _row(rows, scenario, target)
        return r and r.get("cpu_s_per_1k")

    for sc, what in (("h1-keepalive-1k", "HTTP/1.1 keep-alive 1 KiB"),
                     ("h2-1k", "HTTP/2 1 KiB")):
        m, n, d = cpu(sc, "mitmd"), cpu(sc, "nginx"), cpu(sc, "mitmdump")
        v = _ratio(m, n)
        out.append(_check("CPU per request, %s: mitmd / nginx" % what, "<= 1.20x", v,
                          lambda x: x <= 1.2, "-" if v is None else
                          "%.2fx (%.3f vs %.3f s/1k req)" % (v, m, n)))
        v = _ratio(d, m)
        out.append(_check("CPU per request, %s: mitmdump / mitmd" % what, ">= 10x", v,
                          lambda x: x >= 10, "-" if v is None else
                          "%.1fx (%.3f vs %.3f s/1k req)" % (v, d, m)))
    for sc in ("newconn-full", "newconn-resume"):
        m, n = cpu(sc, "mitmd"), cpu(sc, "nginx")
        v = _ratio(m, n)
        out.append(_check("CPU per connection, %s: mitmd / nginx" % sc, "<= 1.20x", v,
                          lambda x: x <= 1.2, "-" if v is None else
                          "%.2fx (%.3f vs %.3f s/1k conns)" % (v, m, n)))
    # Issue 14's new-connection row: CPU per connection with full handshakes on both sides,
    # in milliseconds on this machine (CONNECT and reverse mode), and against mitmdump.
    for sc, target, what in (("newconn-full", "mitmd", "CONNECT (mitmd-bench)"),
                             ("rev-newconn-full", "mitmd-rev", "reverse mode (mitmd-bench)")):
        m = cpu(sc, target)
        out.append(_check("CPU per connection, full handshakes both sides, %s" % what,
                          "<= %.2f ms" % NEWCONN_MS, m, lambda x: x <= NEWCONN_MS,
                          "-" if m is None else "%.3f ms" % m))
    m, d = cpu("newconn-full", "mitmd"), cpu("newconn-full", "mitmdump")
    v = _ratio(d, m)
    out.append(_check("CPU per connection, newconn-full: mitmdump / mitmd", ">= %.0fx" %
                      NEWCONN_VS_MITMDUMP, v, lambda x: x >= NEWCONN_VS_MITMDUMP,
                      "-" if v is None else "%.1fx (%.3f vs %.3f ms; 1/%.0f would be %.3f ms)"
                      % (v, d, m, NEWCONN_VS_MITMDUMP, d / NEWCONN_VS_MITMDUMP)))
    for sc, what, limit in LIKE_FOR_LIKE:
        m, n = cpu(sc, "mitmd-rev"), cpu(sc, "nginx")
        v = _ratio(m, n)
        text = "-" if v is None else "%.2fx (%.3f vs %.3f s/1k req)" % (v, m, n)
        if limit is None:
            out.append(_check("Like-for-like, reverse mode: CPU per request, %s: mitmd / nginx"
                              % what, "-", v, None, text))
        else:
            out.append(_check("Like-for-like, reverse mode: CPU per request, %s: mitmd / nginx"
                              % what, "<= %.2fx" % limit, v,
                              lambda x, limit=limit: x <= limit, text))
    m, g = cpu(MODE_SCENARIO, "mitmd-rev"), cpu(MODE_SCENARIO, "mitmd")
    v = _ratio(m, g)
    out.append(_check("CPU per request, HTTP/1.1 keep-alive 1 KiB (mitmd-bench): reverse mode / "
                      "regular mode", "<= %.2fx" % MODE_LIMIT, v, lambda x: x <= MODE_LIMIT,
                      "-" if v is None else "%.2fx (%.3f vs %.3f s/1k req)" % (v, m, g)))
    for target, what in (("mitmd", "mitmd"), ("mitmd-1w", "mitmd 1 worker")):
        c, w = _row(rows, "hosts-cold", target), _row(rows, "hosts-warm", target)
        v = _ratio(c and c["rps"], w and w["rps"])
        out.append(_check("Cold certcache throughput / warm, %s" % what, ">= 0.80x", v,
                          lambda x: x >= 0.8, "-" if v is None else
                          "%.2fx (%.0f vs %.0f req/s)" % (v, c["rps"], w["rps"])))
    forge = (result.get("micro") or {}).get("forge") or {}
    v = forge.get("forges_per_sec")
    out.append(_check("Master forges per second on one core (mitmd-bench-forge)", ">= 5,000",
                      v, lambda x: x >= 5000, "-" if v is None else
                      "{:,.0f}/s ({:.1f} us/cert)".format(v, forge.get("us_per_forge", 0))))
    lat = result.get("latency") or {}
    v = lat.get("p99_added_over_direct_ms")
    d, m = _row(rows, "h1-latency-half-max", "direct"), _row(rows, "h1-latency-half-max",
                                                              "mitmd")
    slices = lat.get("p99_added_per_slice_ms")
    out.append(_check("Latency p99 added over direct, open loop at half of mitmd's maximum",
                      "<= 1 ms", v, lambda x: x <= 1.0, "-" if v is None or not d or not m else
                      "%.2f ms (p99 %.2f vs %.2f ms at %s req/s%s)" % (
                          v, m["latency_us"]["p99"] / 1000, d["latency_us"]["p99"] / 1000,
                          format(lat.get("rate", 0), ","),
                          "; median of the slices' %s" % ", ".join("%.2f" % x for x in slices)
                          if slices else "")))
    v = lat.get("nginx_p99_added_over_direct_ms")
    n = _row(rows, "h1-latency-half-max", "nginx")
    slices = lat.get("nginx_p99_added_per_slice_ms")
    out.append(_check("Reference: nginx re-encrypting proxy, p99 added over direct at the same "
                      "rate", "-", v, None, "-" if v is None or not d or not n else
                      "%.2f ms (p99 %.2f vs %.2f ms%s)" % (
                          v, n["latency_us"]["p99"] / 1000, d["latency_us"]["p99"] / 1000,
                          "; median of the slices' %s" % ", ".join("%.2f" % x for x in slices)
                          if slices else "")))
    m, n = lat.get("p99_added_over_direct_ms"), lat.get("nginx_p99_added_over_direct_ms")
    # A negative or zero added p99 for nginx makes the ratio meaningless: not measured.
    v = _ratio(m, n) if n is not None and n > 0 else None
    out.append(_check("Latency p99 added over direct: mitmd / nginx re-encrypting proxy",
                      "<= %.2fx" % P99_VS_NGINX, v, lambda x: x <= P99_VS_NGINX,
                      "-" if v is None else "%.2fx (%.2f vs %.2f ms)" % (v, m, n)))
    for target, what in (("mitmd", "mitmd"), ("mitmd-1w", "mitmd 1 worker")):
        r = next((x for x in result.get("idle", []) if x.get("target") == target and
                  not x.get("failed")), None)
        v = r and r.get("rss_kib_per_conn")
        out.append(_check("RSS per idle intercepted connection, %s" % what, "<= 24 KiB", v,
                          lambda x: x <= 24, "-" if v is None else
                          "%.1f KiB at %s connections" % (v, format(r["established"], ","))))
    def worst_cores(many, one):
        """worst_cores returns (worst, text) of CPU per request `many` / `one` over the
        CORE_SCENARIOS that both ran."""
        worst, parts = None, []
        for sc in CORE_SCENARIOS:
            v = _ratio(cpu(sc, many), cpu(sc, one))
            if v is not None:
                parts.append("%s %.2fx" % (sc, v))
                worst = v if worst is None else max(worst, v)
        return worst, "; ".join(parts) or "-"

    out += features.targets(rows, _check)
    out += longpath.targets(result.get("longpath") or [], _check)
    worst, text = worst_cores("mitmd", "mitmd-1w")
    out.append(_check("CPU per request, 2 workers / 1 worker (worst scenario)", "<= 1.10x",
                      worst, lambda x: x <= 1.1, text))
    worst, text = worst_cores("nginx", "nginx-1w")
    out.append(_check("Reference: nginx re-encrypting proxy, CPU per request, 2 workers / "
                      "1 worker (worst scenario)", "-", worst, None, text))
    return out


def _num(v, fmt):
    return "-" if v is None else fmt.format(v)


def _x(v):
    return "-" if v is None else "{:.2f}x".format(v)


def _cell(text):
    """_cell makes `text` safe inside a markdown table cell."""
    return re.sub(r"\s+", " ", str(text)).replace("|", "\\|")


def _errors(r, width=70):
    if r.get("failed"):
        return _cell(r["failed"])[:width]
    if not r.get("errors"):
        return "0"
    first = r.get("first_error") or ""
    if len(first) > width:
        first = first[: width - 3] + "..."
    return _cell("%d: %s" % (r["errors"], first))


def like_for_like(rows):
    """like_for_like renders the reverse phase's summary (markdown lines, none when it did not
    run): per like-for-like row, mitmd (reverse mode) and nginx side by side with the ratios,
    then the mode row's reverse / regular."""
    out = []
    have = [x for x in LIKE_FOR_LIKE if _row(rows, x[0], "mitmd-rev") or _row(rows, x[0], "nginx")]
    if have:
        out += ["", "Like-for-like rows (the same client drives mitmd in reverse mode and "
                "nginx's reverse proxy; the targets alternate in slices of the same run):", "",
                "| scenario | client | mitmd CPU s/1k req | nginx CPU s/1k req | CPU mitmd / "
                "nginx | mitmd req/s | nginx req/s | req/s mitmd / nginx | mitmd p50 / p99 ms "
                "| nginx p50 / p99 ms | target (issue 14) |",
                "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for sc, what, limit in have:
            m, n = _row(rows, sc, "mitmd-rev"), _row(rows, sc, "nginx")
            get = lambda r, k: r and r.get(k)
            lat = lambda r: "-" if not r or not r.get("latency_us") else "%.2f / %.2f" % (
                r["latency_us"]["p50"] / 1000, r["latency_us"]["p99"] / 1000)
            v = _ratio(get(m, "cpu_s_per_1k"), get(n, "cpu_s_per_1k"))
            verdict = "-" if limit is None else "<= %.2fx: %s" % (
                limit, "-" if v is None else ("PASS" if v <= limit else "**FAIL**"))
            out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                sc, "h2load" if sc.startswith("h2load") else "mitmd-bench",
                _num(get(m, "cpu_s_per_1k"), "{:.3f}"), _num(get(n, "cpu_s_per_1k"), "{:.3f}"),
                _x(v), _num(get(m, "rps"), "{:,.0f}"), _num(get(n, "rps"), "{:,.0f}"),
                _x(_ratio(get(m, "rps"), get(n, "rps"))), lat(m), lat(n), verdict))
    rev, reg = _row(rows, MODE_SCENARIO, "mitmd-rev"), _row(rows, MODE_SCENARIO, "mitmd")
    if rev or reg:
        v = _ratio(rev and rev["cpu_s_per_1k"], reg and reg["cpu_s_per_1k"])
        out += ["", "Mode row (%s, mitmd-bench, fresh instances alternating): CPU per request "
                "reverse mode %s, regular mode %s s/1k req: reverse / regular %s (limit "
                "%.2fx); req/s %s vs %s." % (
                    MODE_SCENARIO, _num(rev and rev["cpu_s_per_1k"], "{:.3f}"),
                    _num(reg and reg["cpu_s_per_1k"], "{:.3f}"), _x(v), MODE_LIMIT,
                    _num(rev and rev["rps"], "{:,.0f}"), _num(reg and reg["rps"], "{:,.0f}"))]
    return out


def markdown(result):
    """markdown renders a result set as markdown: a heading, the machine, the load table,
    the idle-connection table and the notes."""
    m = result["machine"]
    out = []
    out.append("### %s run, %s" % ("Quick (--quick)" if result["quick"] else "Full",
                                   result["date"]))
    out.append("")
    out.append("Machine: %s, %d cores, %.1f GiB RAM, Linux %s, load average %s at the "
               "start, %s at the end. Commit %s. "
               "Load generator: %s; each row %.1f s after a %.1f s warm-up; load generator, "
               "proxy and origin share the machine. Suite wall time %.0f s."
               % (m["cpu_model"], m["cores"], m["mem_gib"], m["kernel"],
                  _num(m.get("loadavg_1m_at_start"), "{:.2f}"),
                  _num(m.get("loadavg_1m_at_end"), "{:.2f}"), result["git_commit"],
                  result["load_generator"], result["row_seconds"], result["warmup_seconds"],
                  result.get("wall_seconds") or 0))
    out.append("")
    out.append("| scenario | target | how | req/s | p50 ms | p99 ms | CPU s/1k req | "
               "peak RSS MiB | req/s vs direct | CPU vs direct | req/s vs nginx | "
               "CPU vs nginx | others' CPU | errors |")
    out.append("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in result["rows"]:
        rr = r.get("ratios", {})
        lat = r.get("latency_us") or {}
        if r.get("failed"):  # no figures: the errors cell says why
            r = dict(r, rps=None, cpu_s_per_1k=None)
            lat = {}
        out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            _cell(r["scenario"]), _cell(r["target_label"]), _cell(r["how"]),
            _num(r.get("rps"), "{:,.0f}"),
            _num(lat.get("p50") and lat["p50"] / 1000, "{:.2f}"),
            _num(lat.get("p99") and lat["p99"] / 1000, "{:.2f}"),
            _num(r.get("cpu_s_per_1k"), "{:.3f}"),
            _num(r.get("peak_rss_kib") and r["peak_rss_kib"] / 1024, "{:.1f}"),
            _x(rr.get("rps_vs_direct")), _x(rr.get("cpu_vs_direct")),
            _x(rr.get("rps_vs_nginx")), _x(rr.get("cpu_vs_nginx")),
            _num(r.get("others_cores"), "{:.2f}"), _errors(r)))
    out.extend(like_for_like(result["rows"]))
    out.extend(features.markdown(result["rows"]))
    out.extend(longpath.markdown(result.get("longpath") or []))
    lat = result.get("latency")
    if lat:
        out.append("")
        per = lambda k: ", ".join("%.2f" % x for x in lat.get(k) or []) or "-"
        out.append("Latency row (h1-latency-half-max): open loop at R = {:,} req/s, half of "
                   "mitmd's maximum of {:,.0f} req/s from {}; latency from each request's "
                   "intended send time; direct, mitmd and nginx alternate in slices, the rows "
                   "show the median slice. mitmd: p99 added over direct {} ms (median of the "
                   "slices' {} ms), p50 added {} ms ({} ms).".format(
                       lat["rate"], lat["max_rps"], lat["max_rps_source"],
                       _num(lat.get("p99_added_over_direct_ms"), "{:.2f}"),
                       per("p99_added_per_slice_ms"),
                       _num(lat.get("p50_added_over_direct_ms"), "{:.2f}"),
                       per("p50_added_per_slice_ms")))
        if lat.get("nginx_p99_added_over_direct_ms") is not None:
            out[-1] += (" nginx's re-encrypting proxy at the same rate: p99 added {} ms ({} ms), "
                        "p50 added {} ms ({} ms).".format(
                            _num(lat.get("nginx_p99_added_over_direct_ms"), "{:.2f}"),
                            per("nginx_p99_added_per_slice_ms"),
                            _num(lat.get("nginx_p50_added_over_direct_ms"), "{:.2f}"),
                            per("nginx_p50_added_per_slice_ms")))
    if result.get("idle"):
        out.append("")
        out.append("Idle connections (%d requested per target): TLS handshake completed, no "
                   "request, held (and quiet for %.1f s) while RSS is read." % (
                       result["idle_target_conns"], result.get("idle_quiet_s", 0)))
        out.append("")
        out.append("| target | how | held | failed | s to open | CPU s/1k conns | "
                   "RSS before MiB | RSS held MiB | KiB per conn | vs nginx |")
        out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in result["idle"]:
            out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                _cell(r["target_label"]), _cell(r["how"]), _num(r.get("established"), "{:,}"),
                _cell(r.get("failed_conns", "-")) if not r.get("failed") else _cell(r["failed"])[:60],
                _num(r.get("seconds"), "{:.1f}"), _num(r.get("cpu_s_per_1k_conns"), "{:.3f}"),
                _num(r.get("rss_before_kib") and r["rss_before_kib"] / 1024, "{:.1f}"),
                _num(r.get("rss_held_kib") and r["rss_held_kib"] / 1024, "{:.1f}"),
                _num(r.get("rss_kib_per_conn"), "{:.1f}"), _x(r.get("kib_per_conn_vs_nginx"))))
    micro = result.get("micro") or {}
    if micro:
        out.append("")
        out.append("Micro-benchmarks (one core each):")
        out.append("")
        f = micro.get("forge")
        if f:
            out.append("- mitmd-bench-forge: " + (
                "error: %s" % _cell(f["error"]) if "error" in f else
                "{:,.0f} leaf certificates/s ({:.1f} us each, {} CA, DER {} B mean), {:,} "
                "forged in {:.2f} s".format(f["forges_per_sec"], f["us_per_forge"],
                                            f.get("ca", "?"), f.get("der_bytes_mean", "?"),
                                            f["certs"], f["seconds"])))
        c = micro.get("certcache")
        if isinstance(c, dict):
            out.append("- mitmd-bench-certcache: error: %s" % _cell(c.get("error")))
        elif c:
            for x in c:
                out.append("- mitmd-bench-certcache %s: {:,.0f} lookups/s ({:.1f} ns each; "
                           "{} keys of {} names, {} B DER)".replace("%s", x.get("bench", "?"))
                           .format(x["lookups_per_sec"], x["ns_per_lookup"], x.get("keys"),
                                   x.get("names_per_key"), x.get("der_bytes")))
    if result.get("targets"):
        out.append("")
        out.append("Targets, this run:")
        out.append("")
        out.append("| target | limit | measured | result |")
        out.append("|---|---|---|---|")
        for t in result["targets"]:
            out.append("| %s | %s | %s | %s |" % (
                _cell(t["target"]), _cell(t["limit"]), _cell(t["measured"]),
                "reference" if t.get("reference") else
                {True: "PASS", False: "**FAIL**", None: "not measured"}[t["pass"]]))
    if result.get("notes"):
        out.append("")
        for n in result["notes"]:
            out.append("- " + n)
    return "\n".join(out) + "\n"
