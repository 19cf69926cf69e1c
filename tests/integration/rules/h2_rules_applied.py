#!/usr/bin/env python3
"""The rules act on HTTP/2 streams as on HTTP/1.1 (curl --http2 through mitmd to an nginx h2
origin): --modify-headers adds and removes request fields the origin sees and response fields
the client sees, --map-remote rewrites :path (same upstream; another host is
rules/h2_map_remote_other_host's), block_list and inject_fault STATUS answer without the origin, inject_fault reset
resets the stream (the connection's other streams go on), inject_latency holds a request on a
ring timer, inject_fault stall holds the response until the idle timeout (504), and every
application is counted per rule in the SIGUSR1 statistics line."""
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, info, read_records, run, step, wait_until  # noqa: E402
import ruleslib  # noqa: E402


def test(env):
    data = os.urandom(200 * 1024)
    ngx, m, flows = ruleslib.setup(env, files={"200k": data}, extra_args=[
        "--set", "idle_timeout=2",
        "--modify-headers", "/~q/X-Env/load-test",
        "--modify-headers", "/~q/X-Gone/",
        "--modify-headers", "/~s/X-Drop-Me/",
        "--map-remote", "|/old-echo|/echo",
        "--set", "block_list=:~u /admin:403",
        "--set", "inject_fault=/~u flaky/100/503",
        "--set", "inject_fault=/~u reset-me/100/reset",
        "--set", "inject_fault=/~u stall-me/100/stall",
        "--set", "inject_latency=/~u slow/400ms"])
    base = f"https://api.origin.test:{ngx.h2_port}"

    step("modify_headers over HTTP/2: the origin sees X-Env added and X-Gone removed; the "
         "client does not see X-Drop-Me")
    rc, code, hdrs, body, ver, _ = ruleslib.curl(m, base + "/echo", headers=["X-Gone: secret"])
    got = ruleslib.echo_fields(body)
    info(f"rc={rc} HTTP/{ver} {code} origin saw {got}")
    check(rc == 0 and ver == "2" and code == 200, f"rc={rc} version={ver} status={code}")
    check(got.get("x-env") == "load-test" and got.get("x-gone") == "" and
          got.get("proto") == "HTTP/2.0", f"origin saw {got}")
    check("x-drop-me" not in hdrs and hdrs.get("x-origin") == "echo", f"client saw {hdrs}")

    step("a 200 KiB file through the same rules: SHA-256 intact")
    rc, code, _, body, ver, _ = ruleslib.curl(m, base + "/200k")
    check(rc == 0 and code == 200 and ruleslib.sha(body) == ruleslib.sha(data),
          f"rc={rc} {code} {len(body)} bytes")

    step("map_remote |/old-echo|/echo: the origin is asked for /echo")
    rc, code, _, body, _, _ = ruleslib.curl(m, base + "/old-echo?a=1")
    got = ruleslib.echo_fields(body)
    check(code == 200 and got.get("uri") == "/echo?a=1", f"{code} origin saw {got}")

    step("block_list and inject_fault STATUS over HTTP/2: 403 and 503 from mitmd")
    rc, code, hdrs, _, ver, _ = ruleslib.curl(m, base + "/admin/x")
    check(code == 403 and ver == "2" and "x-origin" not in hdrs, f"{code} {hdrs}")
    rc, code, hdrs, _, _, _ = ruleslib.curl(m, base + "/flaky")
    check(code == 503 and "x-origin" not in hdrs, f"{code} {hdrs}")

    step("inject_fault reset over HTTP/2: the stream is reset (curl fails, no status)")
    rc, code, _, _, _, _ = ruleslib.curl(m, base + "/reset-me")
    info(f"curl rc={rc} status={code}")
    check(rc != 0 and code == 0, f"rc={rc} status={code}")

    step("inject_latency=/~u slow/400ms: answered 200, at least 0.4 s later")
    rc, code, _, body, _, took = ruleslib.curl(m, base + "/echo?slow")
    info(f"took {took:.3f} s")
    check(code == 200 and took >= 0.4, f"{code} after {took:.3f} s")
    rc, code, _, _, _, fast = ruleslib.curl(m, base + "/echo?fast")
    check(code == 200 and fast < 0.4, f"an unmatched request took {fast:.3f} s")

    step("inject_fault stall with idle_timeout=2: 504 after about 2 s")
    rc, code, _, body, _, took = ruleslib.curl(m, base + "/echo?stall-me")
    info(f"{code} after {took:.2f} s: {body[:80]!r}")
    check(code == 504 and 1.8 <= took <= 4.5 and b"stall" in body, f"{code} after {took:.2f} s")

    step("the -w records: HTTP/2.0, the mapped URL, mitmd's answers")
    recs = wait_until(lambda: (r := read_records(flows)) and len(r) >= 9 and r, 5) or []
    urls = [r.get("request", {}).get("url", "") for r in recs]
    info(f"{len(recs)} records: {urls}")
    check(any(u.endswith("/echo?a=1") for u in urls), f"urls {urls}")

    step("SIGUSR1: the statistics line counts every rule's applications")
    os.kill(m.pid, signal.SIGUSR1)
    line = wait_until(lambda: next((ln for ln in m.stderr().splitlines()
                                    if "rule hits:" in ln), None), 5)
    info(f"{line}")
    check(line is not None, "no rule hits line")
    for want in ("modify_headers#1=", "block_list#1=1", "inject_fault#1=1", "inject_fault#2=1",
                 "inject_fault#3=1", "inject_latency#1=1", "map_remote#1=1"):
        check(want in line, f"{want!r} not in {line!r}")
    check("modify_headers#1=0" not in line, line)


if __name__ == "__main__":
    run(test, __doc__)
