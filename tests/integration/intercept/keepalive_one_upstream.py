#!/usr/bin/env python3
"""Keep-alive: three requests on one client connection through mitmd use exactly one
upstream connection (the origin reports its connection id and counts its accepts)."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, info, run, standard_setup, step  # noqa: E402


def test(env):
    w = standard_setup(env)
    step("3 GET /conn on one client connection (http.client over CONNECT)")
    conn = w.mitmd.https_conn("www.origin.test", w.origin.port)
    ids = []
    for i in range(3):
        conn.request("GET", "/conn")
        resp = conn.getresponse()
        body = json.loads(resp.read())
        check(resp.status == 200, f"request {i + 1}: status {resp.status}")
        ids.append(resp.getheader("X-Conn-Id"))
        info(f"request {i + 1}: upstream conn {body['conn_id']} (peer port {body['peer_port']})")
        check(not resp.will_close, f"request {i + 1}: the proxy asked to close the connection")
    conn.close()

    step("all 3 were served on the same upstream connection")
    check(len(set(ids)) == 1, f"upstream connection ids differ: {ids}")
    step("the origin accepted exactly 1 connection from mitmd")
    stats = w.origin.stats()
    proxied = [c for c in stats["connections"] if c != stats["current"]]
    check(len(proxied) == 1, f"origin saw {len(proxied)} connections via mitmd, expected 1 "
          f"(ids {proxied})")


if __name__ == "__main__":
    run(test, __doc__)
