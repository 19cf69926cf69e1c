#!/usr/bin/env python3
"""Record, then replay for load: N requests of a mixed HTTP/1.1 workload (GET and POST,
several paths, statuses 200/201/404, HTTPS to two origins and plain HTTP) go through mitmd
with -w and save_bodies; mitmd-bench --replay sends the recording at 5x its pace through a
second mitmd against the same origins; the two flow files hold the same requests (method,
URL, request body) with the same statuses. N is 300 here; bench/replay_roundtrip.sh runs it
with N=10,000 (REPLAY_ROUNDTRIP_N)."""
import base64
import collections
import hashlib
import json
import os
import random
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, info, read_records, run, standard_setup, step, wait_until  # noqa

N = int(os.environ.get("REPLAY_ROUNDTRIP_N", "300"))
CLIENTS = 6
CONNS = os.environ.get("REPLAY_ROUNDTRIP_C", "16")  # mitmd-bench -c
SPEED = 5


def workload(i, rnd):
    """The i-th request: (method, host kind, path, body)."""
    k = i % 10
    if k in (0, 1, 2):
        return "GET", "api", f"/hello?i={i}", None
    if k in (3, 4):
        return "POST", "api", f"/sha256?i={i}", rnd.randbytes(rnd.randint(1, 3000))
    if k == 5:
        return "GET", "api", f"/status?code=404&i={i}", None
    if k == 6:
        return "GET", "api", f"/status?code=201&i={i}", None
    if k == 7:
        return "GET", "www", f"/1k?i={i}", None
    if k == 8:
        return "GET", "api", f"/nothing/{i}", None
    return "GET", "plain", f"/1k?i={i}", None


def key(rec):
    rb = rec.get("request_body")
    body = base64.b64decode(rb["base64"]) if rb else b""
    return (rec["request"]["method"], rec["request"]["url"], hashlib.sha256(body).hexdigest(),
            rec["response"]["status"] if rec["response"] else None)


def test(env):
    w = standard_setup(env, workers=2, flows=True, extra_args=["-q", "--set", "save_bodies=64k"])
    hosts = {"api": ("api.origin.test", w.origin.port, True),
             "www": ("www.origin.test", w.nginx.ports["valid"], True),
             "plain": ("www.origin.test", w.nginx.plain_port, False)}

    step(f"record: {N} requests from {CLIENTS} keep-alive clients through mitmd (-w, save_bodies)")
    errors = []

    def client(cid):
        rnd = random.Random(cid)
        conns = {}
        try:
            for i in range(cid, N, CLIENTS):
                method, kind, path, body = workload(i, rnd)
                host, port, tls = hosts[kind]
                if kind not in conns:
                    if tls:
                        conns[kind] = w.mitmd.https_conn(host, port)
                    else:
                        import http.client
                        conns[kind] = http.client.HTTPConnection("127.0.0.1", w.mitmd.port,
                                                                 timeout=10)
                target = path if tls else f"http://{host}:{port}{path}"
                conns[kind].request(method, target, body=body)
                r = conns[kind].getresponse()
                r.read()
                time.sleep(0.001 * rnd.random())  # a pace worth replaying
        except Exception as e:  # noqa
            errors.append(f"client {cid}: {e!r}")
        finally:
            for c in conns.values():
                c.close()

    threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rec_s = time.monotonic() - t0
    check(not errors, f"recording clients: {errors[:3]}")
    recs = wait_until(lambda: (lambda r: r if len(r) >= N else None)(read_records(w.flows)), 10)
    check(recs is not None and len(recs) == N, f"{len(read_records(w.flows))} records, want {N}")
    statuses = collections.Counter(r["response"]["status"] for r in recs)
    check(set(statuses) == {200, 201, 404}, f"recorded statuses {statuses}")
    info(f"recorded {N} requests in {rec_s:.2f} s: {dict(statuses)}")

    step(f"replay: mitmd-bench --replay at {SPEED}x through a second mitmd (-w) to the origins")
    flows2 = env.path("replayed.jsonl")
    m2 = env.mitmd(args=["--upstream-ca", w.pki.ca_cert, "--resolve", "*.origin.test=127.0.0.1",
                         "-q", "-w", flows2, "--set", "save_bodies=64k"], workers=2,
                   name="replayer")
    bench = os.path.join(os.path.dirname(env.mitmd_bin), "mitmd-bench")
    t0 = time.monotonic()
    cp = subprocess.run([bench, "--replay", w.flows, "--speed", str(SPEED), "-c", CONNS,
                         "--proxy", f"127.0.0.1:{m2.port}", "--cafile", m2.ca_cert],
                        capture_output=True, text=True, timeout=60 + N // 50)
    rep_s = time.monotonic() - t0
    info(cp.stderr.strip()[-400:])
    check(cp.returncode == 0, f"mitmd-bench: rc {cp.returncode}\n{cp.stdout[-800:]}\n"
          f"{cp.stderr[-800:]}")
    summary = json.loads(cp.stdout.strip().splitlines()[-1])
    check(summary["requests"] == N and summary["errors"] == 0, f"bench summary {summary}")
    info(f"replayed in {rep_s:.2f} s (recording took {rec_s:.2f} s), {summary['rps']:.0f} req/s")
    check(rep_s < max(rec_s / SPEED * 3, rec_s), f"replay took {rep_s:.2f} s for a "
          f"{rec_s:.2f} s recording at {SPEED}x")

    step("the two flow files: the same requests (method, URL, body) with the same statuses")
    recs2 = wait_until(lambda: (lambda r: r if len(r) >= N else None)(read_records(flows2)), 10)
    check(recs2 is not None, f"{len(read_records(flows2))} replayed records, want {N}")
    a, b = collections.Counter(map(key, recs)), collections.Counter(map(key, recs2))
    check(a == b, f"differences: recorded only {list((a - b).items())[:3]}, replayed only "
          f"{list((b - a).items())[:3]}")
    m2.stop()


if __name__ == "__main__":
    run(test, __doc__)
