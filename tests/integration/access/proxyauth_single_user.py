#!/usr/bin/env python3
"""--proxyauth alice:s3cret: curl --proxy-user with the right, a wrong and no password, over
CONNECT (HTTPS, intercepted) and plain http:// (absolute-form); a missing or wrong password
is answered 407 with Proxy-Authenticate: Basic realm="mitmd", each plain request on a
keep-alive connection is checked (as mitmproxy), Python's urllib with a ProxyHandler passes,
the origin never sees Proxy-Authorization, and the master counts the refusals."""
import os
import socket
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from accesslib import (CHALLENGE, basic, check_407, curl, echoed_fields, read_answer,  # noqa
                       raw_request, setup)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (check, info, mitmd_stats, read_records, run, step,  # noqa: E402
                     wait_until)


def test(env):
    flows = env.path("flows.jsonl")
    w = setup(env, extra_args=["--proxyauth", "alice:s3cret", "-w", flows])
    proxy = f"http://127.0.0.1:{w.mitmd.port}"
    https_url = f"https://www.origin.test:{w.tls.port}/headers"
    http_url = f"http://www.origin.test:{w.plain.port}/headers"
    refused = 0

    step("CONNECT with the right password (curl --proxy-user) -> 200; the origin saw no "
         "Proxy-Authorization")
    rc, code, connect, body, err = curl(env, ["-x", proxy, "--proxy-user", "alice:s3cret"],
                                        https_url, cafile=w.mitmd.ca_cert)
    check(rc == 0 and code == 200 and connect == 200,
          f"curl rc {rc}, HTTP {code}, CONNECT {connect}: {err.strip()}")
    fields = echoed_fields(body)
    check("proxy-authorization" not in fields, f"the origin saw Proxy-Authorization: {fields}")

    for what, args in (("a wrong password", ["--proxy-user", "alice:wrong"]),
                       ("no credentials", []),
                       ("a wrong user", ["--proxy-user", "bob:s3cret"])):
        step(f"CONNECT with {what} -> 407 to the CONNECT, no tunnel")
        rc, code, connect, _, err = curl(env, ["-x", proxy] + args, https_url,
                                         cafile=w.mitmd.ca_cert)
        check(connect == 407 and rc != 0, f"curl rc {rc}, CONNECT {connect}: {err.strip()}")
        refused += 1

    step("CONNECT without credentials, by hand: the 407's fields")
    status, hdrs, body = raw_request(w.mitmd.port, (
        f"CONNECT www.origin.test:{w.tls.port} HTTP/1.1\r\n"
        f"Host: www.origin.test:{w.tls.port}\r\n\r\n").encode())
    check_407(status, hdrs, "CONNECT without Proxy-Authorization")
    check(b"--proxy-user" in body, f"the 407 body does not say how to authenticate: {body!r}")
    refused += 1

    step("CONNECT with a scheme other than Basic -> 407")
    status, hdrs, _ = raw_request(w.mitmd.port, (
        f"CONNECT www.origin.test:{w.tls.port} HTTP/1.1\r\nHost: x\r\n"
        f"Proxy-Authorization: Bearer czNjcmV0\r\n\r\n").encode())
    check_407(status, hdrs, "CONNECT with Bearer credentials")
    refused += 1

    step("plain http:// with the right password -> 200; the origin saw no Proxy-Authorization")
    rc, code, _, body, err = curl(env, ["-x", proxy, "--proxy-user", "alice:s3cret"], http_url)
    check(rc == 0 and code == 200, f"curl rc {rc}, HTTP {code}: {err.strip()}")
    fields = echoed_fields(body)
    check("proxy-authorization" not in fields, f"the origin saw Proxy-Authorization: {fields}")

    for what, args in (("a wrong password", ["--proxy-user", "alice:s3cretX"]),
                       ("no credentials", [])):
        step(f"plain http:// with {what} -> 407 with the challenge")
        rc, code, _, _, err = curl(env, ["-x", proxy, "-D", env.path("h.txt")] + args, http_url)
        check(code == 407, f"curl rc {rc}, HTTP {code}: {err.strip()}")
        with open(env.path("h.txt"), "rb") as f:
            head = f.read().decode("iso-8859-1")
        check(f"Proxy-Authenticate: {CHALLENGE}" in head,
              f"no 'Proxy-Authenticate: {CHALLENGE}' in the 407 head:\n{head}")
        refused += 1

    step("keep-alive: each plain request is checked (right, then none -> 407, as mitmproxy)")
    sock = socket.create_connection(("127.0.0.1", w.mitmd.port), timeout=10)
    sock.sendall((f"GET {http_url} HTTP/1.1\r\nHost: www.origin.test:{w.plain.port}\r\n"
                  f"Proxy-Authorization: {basic('alice', 's3cret')}\r\n\r\n").encode())
    status, _, body = read_answer(sock)
    check(status == 200, f"first request with credentials: {status}")
    check("proxy-authorization" not in echoed_fields(body), "the origin saw Proxy-Authorization")
    sock.sendall((f"GET {http_url} HTTP/1.1\r\nHost: www.origin.test:{w.plain.port}\r\n\r\n")
                 .encode())
    status, hdrs, _ = read_answer(sock)
    check_407(status, hdrs, "second request without credentials on the same connection")
    sock.close()
    refused += 1

    step("Python urllib with ProxyHandler({'http': 'http://alice:s3cret@...'}) -> 200")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler(
        {"http": f"http://alice:s3cret@127.0.0.1:{w.mitmd.port}"}))
    with opener.open(http_url, timeout=10) as resp:
        check(resp.status == 200, f"urllib got {resp.status}")
        check("proxy-authorization" not in echoed_fields(resp.read()),
              "the origin saw urllib's Proxy-Authorization")

    step("Python urllib with a proxy and no credentials -> HTTPError 407 with the challenge")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler(
        {"http": f"http://127.0.0.1:{w.mitmd.port}"}))
    try:
        opener.open(http_url, timeout=10)
        check(False, "urllib without credentials got through")
    except urllib.error.HTTPError as e:
        check(e.code == 407 and e.headers.get("Proxy-Authenticate") == CHALLENGE,
              f"urllib: HTTP {e.code}, Proxy-Authenticate {e.headers.get('Proxy-Authenticate')!r}")
    refused += 1

    step("the -w records hold the exchanges but never the client's Proxy-Authorization")
    secret = basic("alice", "s3cret").split()[1]
    check(wait_until(lambda: len(read_records(flows)) >= 12, 5),
          f"{len(read_records(flows))} flow records, expected at least 12")
    with open(flows) as f:
        text = f.read()
    check(secret not in text and "s3cret" not in text,
          "the flow records contain the proxy password")
    check(any(r.get("response", {}).get("status") == 407 for r in read_records(flows)),
          "no flow record of a 407")

    step(f"SIGUSR1: auth_failed counts the {refused} refusals")
    stats = {}

    def counted():
        nonlocal stats
        stats = mitmd_stats(w.mitmd)
        return stats.get("auth_failed", -1) >= refused

    wait_until(counted, 5, interval=0.3)
    info(f"auth_failed={stats.get('auth_failed')} client_errors={stats.get('client_errors')}")
    check(stats.get("auth_failed") == refused,
          f"auth_failed={stats.get('auth_failed')}, expected {refused}")


if __name__ == "__main__":
    run(test, __doc__)
