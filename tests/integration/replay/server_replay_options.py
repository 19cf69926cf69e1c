#!/usr/bin/env python3
"""mitmproxy's server replay options in mitmd: server_replay_use_headers (the named request
fields must match too), server_replay_ignore_payload_params (urlencoded and multipart form
fields left out of the match), server_replay_ignore_content, and server_replay_refresh (on
by default: a replayed Date, Expires, Last-Modified and Set-Cookie Expires move by the
recording's age, over HTTP/1.1 and HTTP/2; off: as recorded)."""
import email.utils
import http.client
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, read_records, run, standard_setup, step, wait_until  # noqa

DAY = 86400
FORM = "application/x-www-form-urlencoded"
MP = "multipart/form-data; boundary=b0undary"


def multipart(user, ts):
    return ("--b0undary\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\n%s\r\n"
            "--b0undary\r\nContent-Disposition: form-data; name=\"ts\"\r\n\r\n%s\r\n"
            "--b0undary--\r\n" % (user, ts)).encode()


def req(w, method, path, body=None, headers=None, host="api.origin.test", port=None):
    conn = w.mitmd.https_conn(host, port or w.origin.port)
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, data, {k.lower(): v for k, v in r.getheaders()}, r.msg.get_all("Set-Cookie")


def h2_date(w):
    """h2_date GETs nginx's /1k over HTTP/2 through mitmd; returns (status, Date)."""
    cp = subprocess.run(["curl", "-sS", "--http2", "-x", f"http://127.0.0.1:{w.mitmd.port}",
                         "--cacert", w.mitmd.ca_cert, "-o", "/dev/null", "-D", "-",
                         "--max-time", "20", f"https://www.origin.test:{w.nginx.h2_port}/1k"],
                        capture_output=True, text=True, timeout=30)
    head = cp.stdout.splitlines()
    date = next((x.split(":", 1)[1].strip() for x in head if x.lower().startswith("date:")), None)
    return (head[0] if head else cp.stderr), date


def secs(d):
    return email.utils.mktime_tz(email.utils.parsedate_tz(d))


def test(env):
    step("record: GET /hello with User-Agent, form and multipart POSTs, HTTP/2 GET /1k")
    rec = standard_setup(env, workers=1, flows=True, extra_args=["--set", "save_bodies=64k"])
    hello = req(rec, "GET", "/hello", headers={"User-Agent": "agent/1"})[1]
    req(rec, "POST", "/sha256", b"user=bob&ts=111", {"Content-Type": FORM})
    req(rec, "POST", "/sha256", multipart("bob", "111"), {"Content-Type": MP})
    line, _ = h2_date(rec)
    check("200" in line, f"record h2: {line}")
    wait_until(lambda: len(read_records(rec.flows)) >= 4, 10)
    rec.mitmd.stop()
    step("age the recording by a day; give /hello Expires, Last-Modified and a cookie")
    old = time.time() - DAY
    recording = env.path("recording.jsonl")
    out = []
    with open(rec.flows) as f:
        for line in f:
            r = json.loads(line)
            t = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(old))
            r["startedDateTime"] = t
            hs = [h for h in r["response"]["headers"] if h["name"].lower() != "date"]
            hs.append({"name": "Date", "value": email.utils.formatdate(old, usegmt=True)})
            if r["request"]["url"].endswith("/hello"):
                hs += [{"name": "Expires", "value": email.utils.formatdate(old + 3600, usegmt=True)},
                       {"name": "Last-Modified",
                        "value": email.utils.formatdate(old - 60, usegmt=True)},
                       {"name": "Set-Cookie", "value": "sid=1; Path=/; Expires=" +
                        email.utils.formatdate(old + 7200, usegmt=True) + "; HttpOnly"}]
            r["response"]["headers"] = hs
            out.append(json.dumps(r))
    with open(recording, "w") as f:
        f.write("\n".join(out) + "\n")
    base = ["--upstream-ca", rec.pki.ca_cert, "--resolve", "*.origin.test=127.0.0.1", "-S",
            recording, "--set", "server_replay_extra=418", "--set", "server_replay_reuse=true"]
    w = rec

    step("server_replay_use_headers=User-Agent; refresh on (the default)")
    w.mitmd = env.mitmd(args=base + ["--set", "server_replay_use_headers=User-Agent", "-w",
                                     env.path("replayed.jsonl")], name="use-headers")
    s, _, h, cookies = req(w, "GET", "/hello", headers={"User-Agent": "agent/1"})
    check(s == 200, f"same User-Agent: {s}")
    now = time.time()
    check(abs(secs(h["date"]) - now) < 30, f"Date refreshed to now: {h['date']}")
    check(abs(secs(h["expires"]) - (now + 3600)) < 30, f"Expires moved a day: {h['expires']}")
    check(abs(secs(h["last-modified"]) - (now - 60)) < 30, f"Last-Modified: {h['last-modified']}")
    exp = cookies[0].split("Expires=")[1].split(";")[0] if cookies else ""
    check(exp and abs(secs(exp) - (now + 7200)) < 30 and cookies[0].startswith("sid=1; Path=/;")
          and cookies[0].endswith("; HttpOnly"), f"Set-Cookie Expires moved: {cookies}")
    rec1 = wait_until(lambda: next((r for r in read_records(env.path("replayed.jsonl"))
                                    if r["request"]["url"].endswith("/hello")), None), 10)
    d = next((x["value"] for x in (rec1 or {}).get("response", {}).get("headers", [])
              if x["name"].lower() == "date"), None)
    check(d is not None and abs(secs(d) - now) < 30, f"the -w record has the refreshed Date: {d}")
    s, _, _, _ = req(w, "GET", "/hello", headers={"User-Agent": "agent/2"})
    check(s == 418, f"another User-Agent: {s}")
    s, _, _, _ = req(w, "GET", "/hello")
    check(s == 418, f"no User-Agent: {s}")
    line, date = h2_date(w)
    check("200" in line and date and abs(secs(date) - time.time()) < 30,
          f"HTTP/2 replay, Date refreshed: {line} {date}")
    s, _, _, _ = req(w, "POST", "/sha256", b"user=bob&ts=999", {"Content-Type": FORM})
    check(s == 418, f"without ignore_payload_params another ts does not match: {s}")
    s, _, _, _ = req(w, "GET", "/hello", headers={"User-Agent": "agent/1"},
                     host="www.origin.test", port=w.nginx.ports["valid"])
    check(s == 418, f"another host and port do not match: {s}")
    w.mitmd.stop()

    step("server_replay_ignore_payload_params=ts; server_replay_refresh=false")
    w.mitmd = env.mitmd(args=base + ["--set", "server_replay_ignore_payload_params=ts", "--set",
                                     "server_replay_refresh=false"], name="payload")
    s, _, _, _ = req(w, "POST", "/sha256", b"user=bob&ts=999", {"Content-Type": FORM})
    check(s == 200, f"form, ts ignored: {s}")
    s, _, _, _ = req(w, "POST", "/sha256", b"user=eve&ts=111", {"Content-Type": FORM})
    check(s == 418, f"form, another user: {s}")
    s, _, _, _ = req(w, "POST", "/sha256", multipart("bob", "222"), {"Content-Type": MP})
    check(s == 200, f"multipart, ts ignored: {s}")
    s, _, _, _ = req(w, "POST", "/sha256", multipart("eve", "111"), {"Content-Type": MP})
    check(s == 418, f"multipart, another user: {s}")
    s, _, h, _ = req(w, "GET", "/hello", headers={"User-Agent": "other"})
    check(s == 200 and abs(secs(h["date"]) - old) < 2,
          f"refresh off: the recorded Date: {s} {h.get('date')}")
    line, date = h2_date(w)
    check("200" in line and date and abs(secs(date) - old) < 2, f"HTTP/2, refresh off: {date}")
    w.mitmd.stop()

    step("server_replay_ignore_content, _ignore_host, _ignore_port")
    w.mitmd = env.mitmd(args=base + ["--set", "server_replay_ignore_content=true", "--set",
                                     "server_replay_ignore_host=true", "--set",
                                     "server_replay_ignore_port=true"], name="ignore")
    s, _, _, _ = req(w, "POST", "/sha256", b"anything at all", {"Content-Type": "text/plain"})
    check(s == 200, f"ignore_content: {s}")
    s, body, _, _ = req(w, "GET", "/hello", headers={"User-Agent": "x"}, host="www.origin.test",
                        port=w.nginx.ports["valid"])
    check(s == 200 and body == hello, f"ignore_host + ignore_port: the recorded /hello from "
          f"another host and port (nginx would answer 404): {s} {body[:60]!r}")
    w.mitmd.stop()

    step("server_replay_kill_extra (mitmproxy's older spelling of extra=kill)")
    w.mitmd = env.mitmd(args=base[:-4] + ["--set", "server_replay_kill_extra=true"], name="kill")
    try:
        got = req(w, "GET", "/nothing-recorded")[0]
    except (ConnectionError, http.client.HTTPException) as e:
        got = type(e).__name__
    check(got in ("RemoteDisconnected", "ConnectionResetError", "IncompleteRead",
                  "BadStatusLine"), f"an extra request is killed: {got}")
    s, _, _, _ = req(w, "GET", "/hello", headers={"User-Agent": "agent/1"})
    check(s == 200, f"a recorded request is still answered: {s}")
    w.mitmd.stop()


if __name__ == "__main__":
    run(test, __doc__)
