#!/usr/bin/env python3
"""--proxyauth @FILE with an htpasswd file made by Apache's htpasswd: a bcrypt (-B), a SHA1
(-s) and an APR1 (-m) user each pass with their password and get 407 with another, over
plain http:// and CONNECT; `--proxyauth any` wants credentials but takes any; a missing
file or a line with an unsupported hash stops mitmd at start with exit 2 and a line naming
the file (and the line)."""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from accesslib import basic, check_407, curl, echoed_fields, raw_request, setup  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (TestFailure, check, info, mitmd_stats, run, step,  # noqa: E402
                     wait_until)

USERS = (("carol", "-B", "bcrypt pa:ss w0rd"), ("bob", "-s", "sha1 hunter2"),
         ("alice", "-m", "apr1 s3cret"))


def htpasswd(env, path, user, flag, password, create):
    argv = ["htpasswd", "-b"] + (["-c"] if create else []) + [flag]
    if flag == "-B":
        argv += ["-C", "5"]  # the lowest cost htpasswd takes: the test stays fast
    env.run_cmd(argv + [path, user, password], check_rc=0)


def test(env):
    if shutil.which("htpasswd") is None:
        raise TestFailure("htpasswd is not installed (apt-get install apache2-utils; "
                          "tests/install-deps does)")
    path = env.path("htpasswd")
    for i, (user, flag, password) in enumerate(USERS):
        htpasswd(env, path, user, flag, password, i == 0)
    with open(path) as f:
        lines = f.read().splitlines()
    info("htpasswd file: " + " | ".join(l.split(":", 1)[1][:12] + "..." for l in lines))
    check([l.split(":", 1)[1][:4] for l in lines] == ["$2y$", "{SHA", "$apr"],
          f"htpasswd did not make bcrypt, SHA1 and APR1 hashes: {lines}")

    w = setup(env, extra_args=["--proxyauth", "@" + path])
    proxy = f"http://127.0.0.1:{w.mitmd.port}"
    http_url = f"http://www.origin.test:{w.plain.port}/headers"
    refused = 0
    for user, flag, password in USERS:
        scheme = password.split()[0]
        step(f"{scheme} user {user}: right password -> 200 (plain http://), origin sees no "
             "Proxy-Authorization")
        rc, code, _, body, err = curl(env, ["-x", proxy, "--proxy-user", f"{user}:{password}"],
                                      http_url)
        check(code == 200, f"curl rc {rc}, HTTP {code}: {err.strip()}")
        check("proxy-authorization" not in echoed_fields(body), "origin saw Proxy-Authorization")
        step(f"{scheme} user {user}: wrong password -> 407")
        status, hdrs, _ = raw_request(w.mitmd.port, (
            f"GET {http_url} HTTP/1.1\r\nHost: www.origin.test\r\n"
            f"Proxy-Authorization: {basic(user, password + 'x')}\r\n\r\n").encode())
        check_407(status, hdrs, f"{user} with a wrong password")
        refused += 1

    step("bcrypt user over CONNECT (HTTPS intercepted): right -> 200, wrong -> 407")
    https_url = f"https://www.origin.test:{w.tls.port}/headers"
    rc, code, connect, _, err = curl(env, ["-x", proxy, "--proxy-user",
                                           "carol:bcrypt pa:ss w0rd"], https_url,
                                     cafile=w.mitmd.ca_cert)
    check(rc == 0 and code == 200 and connect == 200, f"curl rc {rc}, HTTP {code}: {err.strip()}")
    rc, code, connect, _, err = curl(env, ["-x", proxy, "--proxy-user", "carol:nope"],
                                     https_url, cafile=w.mitmd.ca_cert)
    check(connect == 407, f"curl rc {rc}, CONNECT {connect}: {err.strip()}")
    refused += 1

    step("a user not in the file -> 407")
    status, hdrs, _ = raw_request(w.mitmd.port, (
        f"GET {http_url} HTTP/1.1\r\nHost: www.origin.test\r\n"
        f"Proxy-Authorization: {basic('mallory', 's3cret')}\r\n\r\n").encode())
    check_407(status, hdrs, "an unknown user")
    refused += 1

    stats = {}

    def counted():
        nonlocal stats
        stats = mitmd_stats(w.mitmd)
        return stats.get("auth_failed", -1) >= refused

    wait_until(counted, 5, interval=0.3)
    check(stats.get("auth_failed") == refused,
          f"auth_failed={stats.get('auth_failed')}, expected {refused}")
    w.mitmd.stop()

    step("--proxyauth any: no credentials -> 407, any user and password -> 200")
    m = env.mitmd(args=["--resolve", "*.origin.test=127.0.0.1", "--proxyauth", "any"],
                  name="mitmd-any")
    rc, code, _, _, err = curl(env, ["-x", f"http://127.0.0.1:{m.port}"], http_url)
    check(code == 407, f"no credentials with 'any': HTTP {code}: {err.strip()}")
    rc, code, _, _, err = curl(env, ["-x", f"http://127.0.0.1:{m.port}", "--proxy-user",
                                     "whoever:whatever"], http_url)
    check(code == 200, f"any credentials with 'any': HTTP {code}: {err.strip()}")
    m.stop()

    step("--proxyauth @missing-file, a bad line, no colon, LDAP -> exit 2 with a line naming "
         "the cause")
    missing = env.path("no-such-htpasswd")
    bad = env.path("bad-htpasswd")
    with open(bad, "w") as f:
        f.write(lines[0] + "\neve:plaintext-password\n")
    for spec, want in (("@" + missing, "no-such-htpasswd"), ("@" + bad, "line 2"),
                       ("nocolon", "USER:PASS"), ("ldap:srv:cn=x:pw:dc=y", "LDAP")):
        cp = subprocess.run([env.mitmd_bin, "--confdir", env.path("conf-bad"), "-p", "0",
                             "--proxyauth", spec], capture_output=True, text=True, timeout=20)
        info(f"{spec}: exit {cp.returncode}: {cp.stderr.strip()[:200]}")
        check(cp.returncode == 2, f"mitmd --proxyauth {spec} exited {cp.returncode}, expected 2")
        check(want in cp.stderr and "--proxyauth" in cp.stderr,
              f"the error does not name --proxyauth and {want!r}: {cp.stderr.strip()}")


if __name__ == "__main__":
    run(test, __doc__)
