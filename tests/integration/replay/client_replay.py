#!/usr/bin/env python3
"""Client replay, mitmdump's -C / --client-replay / --set client_replay: a -w recording (with
save_bodies) of an HTTPS GET and an HTTPS POST with a 3,000-byte body to the Python origin, a
plain HTTP GET and an HTTP/2 GET to nginx is sent again by `mitmd -C FILE`: the origin sees new
connections, the POST body arrives byte for byte (the origin's SHA-256 of it, captured in the
replay's own -w record), nginx's file comes back (SHA-256), every flow line starts with
"[replay]: " as mitmdump's and every record says "is_replay": "request"; mitmd exits 0 once all
are answered (mitmdump without --keepserving), keeps serving with --keepserving, and replays
through --proxyauth (its own requests need no credentials). A POST recorded without its body
is left out, said at start. Worker 0 killed while a slow request is in flight: the restarted
worker 0 sends that request again and the rest once, and mitmd exits 0. A reload (SIGHUP)
mid-replay sends each request once: the old worker 0 finishes the one in flight, the new one
goes on after it."""
import hashlib
import json
import os
import re
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (check, curl, info, read_records, run, standard_setup, step,  # noqa: E402
                     wait_until)


def lines_of(text):
    return [ln for ln in text.splitlines() if ln.strip()]


def test(env):
    onek = os.urandom(1024)
    w = standard_setup(env, flows=True, files={"1k": onek},
                       extra_args=["--set", "save_bodies=64k"])
    m, org, ngx = w.mitmd, w.origin, w.nginx
    body = os.urandom(3000)
    body_path = env.path("body.bin")
    with open(body_path, "wb") as f:
        f.write(body)

    step("record: HTTPS GET and POST (3,000 bytes) to the origin, plain GET and HTTP/2 GET to nginx")
    urls = [f"https://www.origin.test:{org.port}/hello",
            f"https://www.origin.test:{org.port}/sha256",
            f"http://www.origin.test:{ngx.plain_port}/1k",
            f"https://www.origin.test:{ngx.h2_port}/1k"]
    code, _, err = curl(env, m.port, urls[0], cafile=m.ca_cert)
    check(code == 200, f"GET /hello: {code} {err}")
    code, got, err = curl(env, m.port, urls[1], cafile=m.ca_cert,
                          extra=["--data-binary", f"@{body_path}"])
    check(code == 200 and json.loads(got)["sha256"] == hashlib.sha256(body).hexdigest(),
          f"POST /sha256: {code} {got!r} {err}")
    code, got, err = curl(env, m.port, urls[2])
    check(code == 200 and got == onek, f"plain GET: {code} {err}")
    code, got, err = curl(env, m.port, urls[3], cafile=m.ca_cert, extra=["--http2"])
    check(code == 200 and got == onek, f"HTTP/2 GET: {code} {err}")
    check(wait_until(lambda: len(read_records(w.flows)) >= 4, 5), "4 records")
    m.stop()
    recorded = read_records(w.flows)
    check(recorded[3]["request"]["httpVersion"] == "HTTP/2.0", "the last record is HTTP/2")
    rec_path = env.path("recorded.jsonl")
    with open(w.flows) as src, open(rec_path, "w") as dst:
        dst.write(src.read())

    conns_before = len(org.stats()["connections"])
    base = [env.mitmd_bin, "--confdir", m.confdir, "-p", "0", "--upstream-ca", w.pki.ca_cert,
            "--resolve", "*.origin.test=127.0.0.1", "--set", "save_bodies=64k"]

    step("mitmd -C FILE: each request again, [replay] lines, exit 0 once all are answered")
    out = env.path("replayed.jsonl")
    cp = env.run_cmd(base + ["-C", rec_path, "-w", out], timeout=30)
    info(cp.stdout)
    got = lines_of(cp.stdout)
    check(cp.returncode == 0, f"exit {cp.returncode}: {cp.stderr[-1500:]}")
    check("client replay: 4 requests from" in cp.stderr, f"start-up line: {cp.stderr[-1500:]}")
    check(len(got) == 4, f"{len(got)} lines:\n{cp.stdout}")
    for ln, url in zip(got, urls):
        check(re.match(r"\[replay\]: (GET|POST) " + re.escape(url) + r" HTTP/1\.1 << 200 ", ln),
              f"line {ln!r}, want [replay]: ... {url} HTTP/1.1 << 200")
    recs = read_records(out)
    check(len(recs) == 4 and all(r.get("is_replay") == "request" for r in recs),
          f"records: {[r.get('is_replay') for r in recs]}")
    post = recs[1]
    check(post["request"]["method"] == "POST" and post["request"]["bodySize"] == 3000,
          f"replayed POST record: {post['request']['method']} {post['request']['bodySize']}")
    import base64
    answer = json.loads(base64.b64decode(post["response_body"]["base64"]))
    check(answer == {"sha256": hashlib.sha256(body).hexdigest(), "length": 3000},
          f"the origin got another body: {answer}")
    for r in recs[2:]:
        check(hashlib.sha256(base64.b64decode(r["response_body"]["base64"])).digest() ==
              hashlib.sha256(onek).digest(), f"nginx's 1k differs: {r['request']['url']}")
    conns_after = len(org.stats()["connections"])
    check(conns_after >= conns_before + 2,
          f"the origin saw {conns_after - conns_before} new connections, want 2 or more")

    step("-r FILE -C FILE: the recording's lines, then the replay's, exit 0; -n -C is refused")
    cp = env.run_cmd(base + ["-r", rec_path, "-C", rec_path], timeout=30)
    got = lines_of(cp.stdout)
    check(cp.returncode == 0 and len(got) == 8 and
          sum(ln.startswith("[replay]: ") for ln in got) == 4 and
          not got[0].startswith("[replay]"), f"exit {cp.returncode}:\n{cp.stdout}")
    cp = env.run_cmd(base + ["-n", "-C", rec_path], timeout=30)
    check(cp.returncode == 2 and "leave out -n" in cp.stderr, f"-n -C: {cp.returncode} {cp.stderr}")

    step("--keepserving: mitmd stays up after the replay; --proxyauth does not stop it")
    k = env.mitmd(args=["--upstream-ca", w.pki.ca_cert, "--resolve", "*.origin.test=127.0.0.1",
                        "-C", rec_path, "--keepserving", "--proxyauth", "u:p"], name="keep")
    check(wait_until(lambda: len(lines_of(k.stdout())) >= 4, 10), f"lines:\n{k.stdout()}")
    check(all(ln.startswith("[replay]: ") and " << 200 " in ln for ln in lines_of(k.stdout())),
          f"replayed through --proxyauth:\n{k.stdout()}")
    check(k.wait_exit(1.5) is None, "mitmd exited after the replay despite --keepserving")
    code, _, _ = curl(env, k.port, f"http://www.origin.test:{ngx.plain_port}/1k")
    check(code == 407, f"a client without credentials gets {code}, want 407")
    k.stop()

    step("a POST recorded without its body is left out, and said so")
    nobody = env.path("nobody.jsonl")
    with open(nobody, "w") as f:
        for r in recorded[:2]:
            r = dict(r)
            r.pop("request_body", None)
            f.write(json.dumps(r) + "\n")
    cp = env.run_cmd(base + ["-C", nobody], timeout=30)
    check(cp.returncode == 0 and len(lines_of(cp.stdout)) == 1 and "/hello" in cp.stdout,
          f"exit {cp.returncode}: {cp.stdout}")
    check("1 requests from" in cp.stderr and "1 with a body cut or not recorded" in cp.stderr,
          f"start-up line: {cp.stderr[-800:]}")

    step("worker 0 killed mid-replay: the restarted worker 0 sends that request again, goes on")
    slow = env.path("slow.jsonl")
    slow_url = f"https://www.origin.test:{org.port}/chunked?chunks=4&size=16&delay=0.6"
    with open(slow, "w") as f:
        for url in (slow_url, urls[0], urls[0]):
            f.write(json.dumps({"request": {"method": "GET", "url": url, "httpVersion": "HTTP/1.1",
                                            "headers": [], "bodySize": 0}}) + "\n")
    with open(org.log) as f:
        slow_seen = f.read().count("GET /chunked")
    d = env.mitmd(args=["--upstream-ca", w.pki.ca_cert, "--resolve", "*.origin.test=127.0.0.1",
                        "-C", slow], name="killed")
    d.expect_worker_deaths = True  # the SIGKILL below

    def origin_got_slow():
        with open(org.log) as f:
            return f.read().count("GET /chunked") > slow_seen
    check(wait_until(origin_got_slow, 5), "the slow request did not reach the origin")
    first = d.worker_pids()
    check(len(first) == 1, f"workers: {first}")
    os.kill(first[0], signal.SIGKILL)
    rc = d.wait_exit(20)
    lines = lines_of(d.stdout())
    info("\n".join(lines))
    check(rc == 0, f"exit {rc}: {d.stderr()[-1500:]}")
    check(len(lines) == 3 and "/chunked" in lines[0] and all(" << 200 " in ln for ln in lines),
          f"lines after the restart:\n{d.stdout()}")
    with open(org.log) as f:
        check(f.read().count("GET /chunked") == slow_seen + 2,
              "the request in flight was not sent again by the new worker 0")

    step("SIGHUP mid-replay: the old worker 0 finishes its request, the new one goes on; each "
         "request reaches the origin once")
    hup = env.path("hup.jsonl")
    hup_urls = [f"https://www.origin.test:{org.port}/chunked?chunks=2&size=8&delay=0.25&i={i}"
                for i in range(6)]
    with open(hup, "w") as f:
        for url in hup_urls:
            f.write(json.dumps({"request": {"method": "GET", "url": url, "httpVersion": "HTTP/1.1",
                                            "headers": [], "bodySize": 0}}) + "\n")

    def origin_count(i):
        with open(org.log) as f:
            return f.read().count(f"&i={i} HTTP/1.1")
    r = env.mitmd(args=["--upstream-ca", w.pki.ca_cert, "--resolve", "*.origin.test=127.0.0.1",
                        "-C", hup], name="hup")
    check(wait_until(lambda: origin_count(1) > 0, 10), "request 2 did not reach the origin")
    os.kill(r.pid, signal.SIGHUP)
    rc = r.wait_exit(30)
    counts = [origin_count(i) for i in range(6)]
    info(f"the origin got each request {counts} times; lines:\n{r.stdout()}")
    check(rc == 0, f"exit {rc}: {r.stderr()[-1500:]}")
    check(counts == [1] * 6, f"requests at the origin: {counts}, want each once")
    for i in range(6):
        check(f"&i={i} HTTP/1.1 << 200" in r.stdout(), f"no [replay] line for request {i + 1}")


if __name__ == "__main__":
    run(test, __doc__)
