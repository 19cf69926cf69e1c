#!/usr/bin/env python3
"""-S/--server-replay FILE answers requests that match a recorded one (method, scheme, host,
port, path, query, body) from the recording without contacting the origin, over HTTP/1.1 and
HTTP/2, each recorded response once and in order across 2 workers (mitmproxy's default);
server_replay_extra=STATUS answers the rest; server_replay_reuse and
server_replay_ignore_params change the matching as in mitmproxy; without --keepserving mitmd
stops once every recorded response is used (mitmdump does); a bad option or file stops
start-up with a reason."""
import re
import shutil
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, curl, read_records, run, standard_setup, step, wait_until  # noqa


def origin_hits(w):
    with open(w.origin.log) as f:
        return sum(1 for line in f if re.search(r'" \d{3} ', line))


def get(w, path, method="GET", body=None, host="api.origin.test"):
    conn = w.mitmd.https_conn(host, w.origin.port)
    conn.request(method, path, body=body)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, data, dict((k.lower(), v) for k, v in r.getheaders())


def test(env):
    step("record: GET /hello?x=1&t=1, GET /conn twice, POST /sha256, GET /status?code=404, h2 /1k")
    rec = standard_setup(env, workers=1, flows=True, extra_args=["--set", "save_bodies=64k"],
                         files={"1k": os.urandom(1024)})
    post = os.urandom(2000)
    recorded = {"hello": get(rec, "/hello?x=1&t=1"), "conn1": get(rec, "/conn"),
                "conn2": get(rec, "/conn"), "post": get(rec, "/sha256", "POST", post),
                "404": get(rec, "/status?code=404")}
    check(recorded["conn1"][1] != recorded["conn2"][1], "the two /conn answers should differ")
    code, h2body, err = curl(env, rec.mitmd.port, f"https://www.origin.test:{rec.nginx.h2_port}/1k",
                             cafile=rec.mitmd.ca_cert, extra=["--http2"])
    check(code == 200 and len(h2body) == 1024, f"h2 record: {code} {err}")
    wait_until(lambda: len(read_records(rec.flows)) >= 6, 10)
    rec.mitmd.stop()
    recording = env.path("recording.jsonl")
    shutil.copy(rec.flows, recording)
    base = ["--upstream-ca", rec.pki.ca_cert, "--resolve", "*.origin.test=127.0.0.1"]
    w = rec  # the same origins (the recorded URLs name their ports), a new mitmd each time

    step("replay with 2 workers and server_replay_extra=418: answers come from the recording "
         "(--keepserving: mitmd goes on once they are used up)")
    w.flows = env.path("replayed.jsonl")
    w.mitmd = env.mitmd(args=base + ["-w", w.flows, "-S", recording, "--keepserving",
                                     "--set", "server_replay_extra=418"], workers=2, name="replay")
    check(wait_until(lambda: "server replay: 6 responses under 5 keys" in w.mitmd.stderr(), 5),
          f"start-up line: {w.mitmd.stderr()[-600:]}")
    before = origin_hits(w)
    s, body, hdrs = get(w, "/hello?x=1&t=1")
    check(s == 200 and body == recorded["hello"][1], f"/hello: {s} {body!r}")
    check(hdrs.get("x-conn-id") == recorded["hello"][2].get("x-conn-id"),
          "the replayed response carries the recorded fields")
    s1, b1, _ = get(w, "/conn")
    s2, b2, _ = get(w, "/conn")
    s3, b3, _ = get(w, "/conn")
    check((s1, b1, s2, b2) == (200, recorded["conn1"][1], 200, recorded["conn2"][1]),
          f"/conn twice: the recorded answers in order: {b1!r} {b2!r}")
    check(s3 == 418, f"/conn a third time: used up, server_replay_extra=418: {s3}")
    s, body, _ = get(w, "/sha256", "POST", post)
    check(s == 200 and body == recorded["post"][1], f"POST same body: {s} {body!r}")
    s, body, _ = get(w, "/sha256", "POST", os.urandom(2000))
    check(s == 418, f"POST another body: {s}")
    s, body, _ = get(w, "/status?code=404")
    check(s == 404, f"recorded 404: {s}")
    s, body, _ = get(w, "/hello?x=1&t=2")
    check(s == 418, f"another query: {s}")
    code, body, err = curl(env, w.mitmd.port, f"https://www.origin.test:{w.nginx.h2_port}/1k",
                           cafile=w.mitmd.ca_cert, extra=["--http2", "-s"])
    check(code == 200 and body == h2body, f"h2 replay: {code} {len(body)} {err}")
    code, body, err = curl(env, w.mitmd.port, f"https://www.origin.test:{w.nginx.h2_port}/1k",
                           cafile=w.mitmd.ca_cert, extra=["--http2"])
    check(code == 418, f"h2 /1k again: used up: {code}")
    check(origin_hits(w) == before, f"the origin saw {origin_hits(w) - before} requests")
    recs = wait_until(lambda: (lambda r: r if len(r) >= 10 else None)(read_records(w.flows)), 10)
    check(recs is not None, "the replayed exchanges are recorded by -w")
    check(sorted(r["response"]["status"] for r in recs).count(200) == 5,
          f"statuses: {sorted(r['response']['status'] for r in recs)}")
    replayed = sorted(r["response"]["status"] for r in recs if r.get("is_replay") == "response")
    check(replayed == [200] * 5 + [404], f"records marked is_replay: statuses {replayed}")
    lines = [ln for ln in w.mitmd.stdout().splitlines() if " << " in ln]
    check(sum(" HTTP/1.1 [replay] << 200 OK" in ln or " HTTP/2.0 [replay] << 200" in ln
              for ln in lines) == 5 and sum("[replay] << 418" in ln for ln in lines) == 0,
          "flow lines: replayed responses say [replay] (mitmdump), answers of"
          " server_replay_extra do not:\n" + "\n".join(lines))
    w.mitmd.stop()

    step("without --keepserving mitmd stops (exit 0) once every recorded response is used, "
         "as mitmdump; the last one is answered whole")
    w.mitmd = env.mitmd(args=base + ["-S", recording], workers=2, name="used-up")
    for name, (path, method, body) in (("hello", ("/hello?x=1&t=1", "GET", None)),
                                       ("conn1", ("/conn", "GET", None)),
                                       ("conn2", ("/conn", "GET", None)),
                                       ("post", ("/sha256", "POST", post))):
        s, got, _ = get(w, path, method, body)
        check(s == 200 and got == recorded[name][1], f"{name}: {s} {got!r}")
    s, got, _ = get(w, "/nothing")  # not in the recording: forwarded, uses nothing up
    check(s == 404 and got == b"no such path\n", f"extra=forward: {s} {got!r}")
    s, got, _ = get(w, "/status?code=404")
    check(s == 404, f"recorded 404: {s}")
    check(w.mitmd.wait_exit(0.5) is None, "mitmd stopped with one recorded response left")
    code, body, err = curl(env, w.mitmd.port, f"https://www.origin.test:{w.nginx.h2_port}/1k",
                           cafile=w.mitmd.ca_cert, extra=["--http2", "-s"])
    check(code == 200 and body == h2body, f"the last recorded response: {code} {len(body)} {err}")
    rc = w.mitmd.wait_exit(5)
    check(rc == 0, f"mitmd after the last recorded response: exit {rc}")
    check("every recorded response has been used: stopping" in w.mitmd.stderr(),
          f"the reason: {w.mitmd.stderr()[-600:]}")
    w.mitmd.stop()

    step("server_replay_reuse + server_replay_ignore_params=t, extra forward")
    w.mitmd = env.mitmd(args=base + ["--server-replay", recording, "--set",
                                     "server_replay_reuse=true", "--set",
                                     "server_replay_ignore_params=t"], name="reuse")
    before = origin_hits(w)
    bodies = [get(w, "/conn")[1] for _ in range(3)]
    check(bodies == [recorded["conn1"][1]] * 3, f"reuse: the first answer each time: {bodies}")
    s, body, _ = get(w, "/hello?x=1&t=999")
    check(s == 200 and body == recorded["hello"][1], f"ignored param t: {s}")
    check(origin_hits(w) == before, "the origin was contacted for recorded requests")
    s, body, _ = get(w, "/nothing")
    check(s == 404 and body == b"no such path\n" and origin_hits(w) == before + 1,
          f"extra=forward: the origin answers: {s} {body!r}")
    w.mitmd.stop()

    step("bad options and files stop start-up with a reason")
    for args, want in ((["-S", env.path("missing.jsonl")], "missing.jsonl"),
                       (["-S", recording, "--set", "server_replay_extra=bogus"],
                        "server_replay_extra")):
        cp = subprocess.run([env.mitmd_bin, "--confdir", env.path("c2"), "-p", "0",
                             "--workers", "1"] + args, capture_output=True, text=True, timeout=20)
        check(cp.returncode != 0 and want in cp.stderr, f"{args}: rc {cp.returncode} "
              f"{cp.stderr[-300:]!r}")


if __name__ == "__main__":
    run(test, __doc__)
