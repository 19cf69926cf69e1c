#!/usr/bin/env python3
"""--map-remote to another host for an HTTP/2 client (curl --http2 through mitmd, nginx h2
origin). One HTTP/2 connection has one upstream for all its streams, so when a --map-remote
regex can match in an origin's URL (scheme://host[:port]/), mitmd offers that origin
HTTP/1.1 upstream and the client gets HTTP/1.1 by the ALPN mirror: each request then goes
where its mapped URL says (new upstream, SNI and verification for the new host). Origins no
rule can move keep HTTP/2, and a rule that only touches the path keeps HTTP/2 too."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, info, read_records, run, step, wait_until  # noqa: E402
import ruleslib  # noqa: E402


def test(env):
    ngx, m, flows = ruleslib.setup(env, extra_args=[
        "--map-remote", "|//api.origin.test:(\\d+)/elsewhere|//other.origin.test:\\1/echo",
        "--map-remote", "|/old-echo|/echo"])
    port = ngx.h2_port

    step("a request the rule maps to other.origin.test: served by that host (HTTP/1.1 to the "
         "client, since the rule can move api.origin.test)")
    rc, code, hdrs, body, ver, _ = ruleslib.curl(
        m, f"https://api.origin.test:{port}/elsewhere?q=1")
    got = ruleslib.echo_fields(body)
    info(f"rc={rc} HTTP/{ver} {code} origin saw {got}")
    check(rc == 0 and code == 200, f"rc={rc} status={code} body={body[:200]!r}")
    check(ver == "1.1", f"HTTP version {ver}, want 1.1 (a stream cannot change host)")
    check(got.get("host") == "other.origin.test" and got.get("uri") == "/echo?q=1",
          f"origin saw {got}")

    step("the same origin, a path the rule does not match: still served, from api.origin.test")
    rc, code, _, body, ver, _ = ruleslib.curl(m, f"https://api.origin.test:{port}/echo?x=2")
    got = ruleslib.echo_fields(body)
    check(rc == 0 and code == 200 and got.get("host") == "api.origin.test" and
          got.get("uri") == "/echo?x=2", f"rc={rc} {code} {got}")

    step("an origin no rule can move keeps HTTP/2, and the path-only rule applies over it")
    rc, code, _, body, ver, _ = ruleslib.curl(m, f"https://www.origin.test:{port}/old-echo?y=3")
    got = ruleslib.echo_fields(body)
    info(f"rc={rc} HTTP/{ver} {code} origin saw {got}")
    check(rc == 0 and code == 200 and ver == "2", f"rc={rc} status={code} HTTP/{ver}")
    check(got.get("host") == "www.origin.test" and got.get("uri") == "/echo?y=3" and
          got.get("proto") == "HTTP/2.0", f"origin saw {got}")

    step("the -w record of the mapped request names the new URL and the origin's 200")
    want = f"https://other.origin.test:{port}/echo?q=1"
    recs = wait_until(lambda: (r := read_records(flows)) and len(r) >= 3 and r, 5) or []
    hit = [r for r in recs if r.get("request", {}).get("url") == want]
    info(f"{len(recs)} records: {[r.get('request', {}).get('url') for r in recs]}")
    check(len(hit) == 1 and hit[0].get("response", {}).get("status") == 200,
          f"no record with url {want} and status 200")


if __name__ == "__main__":
    run(test, __doc__)
