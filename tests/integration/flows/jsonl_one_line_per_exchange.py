#!/usr/bin/env python3
"""-w FILE writes JSON Lines: one object per exchange (HTTPS, keep-alive, POST, plain HTTP,
upstream failure) with the HAR-like fields, TLS details and timings of the spec."""
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import TestFailure, check, curl, info, run, standard_setup, step, wait_until  # noqa

TOP = ["startedDateTime", "time", "client", "server", "tls", "request", "response", "timings",
       "error"]
TIMINGS = ["connect", "ssl", "send", "wait", "receive"]


def num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_record(rec, i):
    where = f"line {i + 1}"
    for k in TOP:
        check(k in rec, f"{where}: field {k!r} missing (has {sorted(rec)})")
    check(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", str(rec["startedDateTime"])),
          f"{where}: startedDateTime {rec['startedDateTime']!r} is not ISO 8601 UTC")
    check(num(rec["time"]) and rec["time"] >= 0, f"{where}: time {rec['time']!r}")
    c = rec["client"]
    check(c.get("address") == "127.0.0.1" and num(c.get("port")) and c["port"] > 0,
          f"{where}: client {c!r}")
    s = rec["server"]
    check(isinstance(s, dict) and "address" in s and "port" in s and "host" in s,
          f"{where}: server {s!r}")
    req = rec["request"]
    for k in ("method", "url", "httpVersion", "headers", "bodySize"):
        check(k in req, f"{where}: request.{k} missing")
    check(isinstance(req["headers"], list) and all(
        isinstance(h, dict) and set(h) >= {"name", "value"} for h in req["headers"]),
        f"{where}: request.headers is not a list of {{name, value}}")
    resp = rec["response"]
    for k in ("status", "statusText", "httpVersion", "headers", "bodySize"):
        check(k in resp, f"{where}: response.{k} missing")
    t = rec["timings"]
    for k in TIMINGS:
        check(num(t.get(k)) and (t[k] >= 0 or t[k] == -1), f"{where}: timings.{k} = {t.get(k)!r}")
    if rec["tls"] is not None:
        for k in ("sni", "alpn", "version", "cert_subject", "cert_issuer"):
            check(k in rec["tls"], f"{where}: tls.{k} missing")


def header(hdrs, name):
    for h in hdrs:
        if h["name"].lower() == name.lower():
            return h["value"]
    return None


def test(env):
    w = standard_setup(env, flows=True)
    tls_port = w.nginx.ports["valid"]
    exchanges = 0

    step("exchanges: 2 HTTPS GETs on one connection, 1 HTTPS POST, 1 plain GET, 1 failure")
    url1 = f"https://www.origin.test:{tls_port}/1k"
    conn = w.mitmd.https_conn("www.origin.test", tls_port)
    for _ in range(2):
        conn.request("GET", "/1k")
        r = conn.getresponse()
        check(r.status == 200 and len(r.read()) == 1024, f"GET: {r.status}")
        exchanges += 1
    conn.close()
    post = os.urandom(5000)
    conn = w.mitmd.https_conn("api.origin.test", w.origin.port)
    conn.request("POST", "/sha256", body=post, headers={"X-Test": "flow"})
    r = conn.getresponse()
    resp_body = r.read()
    check(r.status == 200, f"POST: {r.status}")
    conn.close()
    exchanges += 1
    url3 = f"http://www.origin.test:{w.nginx.plain_port}/1k"
    code, _, err = curl(env, w.mitmd.port, url3)
    check(code == 200, f"plain GET: HTTP {code} {err}")
    exchanges += 1
    url4 = f"https://expired.origin.test:{w.nginx.ports['expired']}/1k"
    code, _, err = curl(env, w.mitmd.port, url4, cafile=w.mitmd.ca_cert)
    check(code == 502, f"expired upstream: HTTP {code} {err}")
    exchanges += 1

    def lines():
        try:
            with open(w.flows) as f:
                return f.read().splitlines()
        except OSError:
            return []

    step(f"the flow file gets {exchanges} lines (waiting up to 5 s, then after SIGTERM)")
    if wait_until(lambda: len(lines()) >= exchanges, 5) is None:
        info(f"only {len(lines())} lines while running; stopping mitmd to flush")
    w.mitmd.stop()
    raw = lines()
    check(len(raw) == exchanges, f"flow file has {len(raw)} lines, expected {exchanges}:\n" +
          "\n".join(raw[:10]))
    recs = []
    for i, line in enumerate(raw):
        try:
            recs.append(json.loads(line))
        except ValueError as e:
            raise TestFailure(f"line {i + 1} is not JSON ({e}): {line[:200]!r}")
        check(isinstance(recs[-1], dict), f"line {i + 1} is not a JSON object")
        check_record(recs[-1], i)

    step("each exchange is recorded with its URL, method, status and sizes")
    by_url = {}
    for r in recs:
        by_url.setdefault(r["request"]["url"], []).append(r)
    info("urls: " + ", ".join(sorted(by_url)))
    gets = by_url.get(url1, [])
    check(len(gets) == 2, f"expected 2 records for {url1}, got {len(gets)}")
    for g in gets:
        check(g["request"]["method"] == "GET" and g["response"]["status"] == 200,
              f"GET record: {g['request']['method']} {g['response']['status']}")
        check(g["response"]["bodySize"] == 1024, f"GET bodySize {g['response']['bodySize']}")
        check(g["tls"] is not None, "HTTPS record has tls null")
        check(g["tls"]["sni"] == "www.origin.test", f"tls.sni {g['tls']['sni']!r}")
        check(str(g["tls"]["version"]).startswith("TLSv1."), f"tls.version {g['tls']['version']!r}")
        check(g["server"]["host"] == "www.origin.test" and g["server"]["port"] == tls_port and
              g["server"]["address"] == "127.0.0.1", f"server {g['server']!r} (expected the "
              f"--resolve address 127.0.0.1, port {tls_port}, host www.origin.test)")
        check("mitmd test origin CA" in str(g["tls"]["cert_issuer"]),
              f"tls.cert_issuer {g['tls']['cert_issuer']!r} is not the upstream's issuer")
        check("origin.test" in str(g["tls"]["cert_subject"]),
              f"tls.cert_subject {g['tls']['cert_subject']!r} is not the upstream's subject")
        check(g["tls"]["alpn"] == "http/1.1", f"tls.alpn {g['tls']['alpn']!r}")
        check(g["time"] >= 0 and g["timings"]["wait"] >= 0, "time / timings.wait negative")
        check(g["error"] is None, f"successful GET has error {g['error']!r}")
        check(g["response"]["httpVersion"] == "HTTP/1.1", "response.httpVersion")
    check(gets[0]["client"]["port"] == gets[1]["client"]["port"],
          "the two keep-alive GETs show different client ports")

    url2 = f"https://api.origin.test:{w.origin.port}/sha256"
    posts = by_url.get(url2, [])
    check(len(posts) == 1, f"expected 1 record for {url2}, got {len(posts)}")
    p = posts[0]
    check(p["request"]["method"] == "POST", f"method {p['request']['method']}")
    check(p["request"]["bodySize"] == len(post), f"request.bodySize {p['request']['bodySize']}, "
          f"sent {len(post)}")
    check(p["response"]["bodySize"] == len(resp_body),
          f"response.bodySize {p['response']['bodySize']}, got {len(resp_body)}")
    check(header(p["request"]["headers"], "X-Test") == "flow", "request header X-Test missing")
    check(header(p["response"]["headers"], "Content-Type") == "application/json",
          "response header Content-Type missing")

    plain = by_url.get(url3, [])
    check(len(plain) == 1, f"expected 1 record for {url3}, got {len(plain)}")
    check(plain[0]["tls"] is None, f"plain HTTP record has tls {plain[0]['tls']!r}")
    check(plain[0]["response"]["status"] == 200, "plain status")
    check(plain[0]["timings"]["ssl"] == -1, f"plain timings.ssl {plain[0]['timings']['ssl']}")

    fail = by_url.get(url4, [])
    check(len(fail) == 1, f"expected 1 record for {url4}, got {len(fail)}")
    check(fail[0]["response"]["status"] == 502, f"failure status {fail[0]['response']['status']}")
    check(fail[0]["error"] and "expired" in fail[0]["error"],
          f"failure error {fail[0]['error']!r} does not say expired")


if __name__ == "__main__":
    run(test, __doc__)
