#!/usr/bin/env python3
"""Rules act on intercepted HTTP/1.1 traffic with mitmproxy's syntax: --modify-headers sets a
request field the origin sees and removes a response field the client would see;
block_list answers without contacting the origin; inject_error answers the injected status;
--map-remote sends the request to the mapped URL."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, info, run, standard_setup, step, wait_until  # noqa: E402


def get(env, w, path, head=False):
    """get fetches https://api.origin.test:PORT/path through mitmd; returns (code, hdrs, body)."""
    url = f"https://api.origin.test:{w.origin.port}{path}"
    cp = subprocess.run(["curl", "-sS", "-i", "--suppress-connect-headers", "-x", f"http://127.0.0.1:{w.mitmd.port}",
                         "--cacert", w.mitmd.ca_cert, "--max-time", "20", url],
                        capture_output=True, timeout=30)
    raw = cp.stdout
    head_end = raw.find(b"\r\n\r\n")
    lines = raw[:head_end].decode("latin-1").split("\r\n")
    code = int(lines[0].split()[1]) if lines and lines[0].startswith("HTTP/") else 0
    hdrs = {ln.split(":", 1)[0].strip().lower(): ln.split(":", 1)[1].strip()
            for ln in lines[1:] if ":" in ln}
    return code, hdrs, raw[head_end + 4:]


def test(env):
    w = standard_setup(env, origin=True, extra_args=[
        "--modify-headers", "/~q/X-Env/load-test",
        "--modify-headers", "/~s/X-Conn-Id/",
        "--set", "block_list=:~u /admin:403",
        "--set", "inject_error=/~u flaky/503@100",
        "--map-remote", "|/old-headers|/headers"])

    step("--modify-headers /~q/X-Env/load-test: the origin sees X-Env")
    code, hdrs, body = get(env, w, "/headers")
    got = {k.lower(): v for k, v in json.loads(body)}
    check(code == 200 and got.get("x-env") == "load-test", f"HTTP {code}, origin saw {got}")

    step("--modify-headers /~s/X-Conn-Id/ (empty value): the client does not see X-Conn-Id")
    check("x-conn-id" not in hdrs and "x-peer-port" in hdrs, f"response fields {sorted(hdrs)}")

    step("block_list=:~u /admin:403 -> 403 from mitmd, origin not asked")
    code, hdrs, body = get(env, w, "/admin/users")
    info(f"{code} {hdrs.get('proxy-status')!r}")
    check(code == 403 and "x-peer-port" not in hdrs, f"HTTP {code} {hdrs}")

    step("inject_error=/~u flaky/503@100 -> 503")
    code, hdrs, _ = get(env, w, "/flaky")
    check(code == 503 and "x-peer-port" not in hdrs, f"HTTP {code} {hdrs}")

    step("--map-remote |/old-headers|/headers: /old-headers is served by /headers")
    code, hdrs, body = get(env, w, "/old-headers")
    check(code == 200 and body.startswith(b"[") and "x-peer-port" in hdrs,
          f"HTTP {code} {body[:100]!r}")
    check(wait_until(lambda: f"GET https://api.origin.test:{w.origin.port}/headers"
                     in w.mitmd.stdout(), 5),
          f"the flow records the mapped URL:\n{w.mitmd.stdout()}")


if __name__ == "__main__":
    run(test, __doc__)
