#!/usr/bin/env python3
"""--mode socks5 --proxyauth alice:s3cret: curl --socks5-hostname with --proxy-user and the
right password fetches through the intercepted tunnel; a wrong password and no credentials
are refused (RFC 1929 status 0x01; 'no acceptable methods' 0xFF for a client that offers
no username/password); a hand-written client sees the exact bytes; refusals are counted."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from accesslib import curl, echoed_fields, socks5_login, socks5_request, setup  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, info, mitmd_stats, run, step, wait_until  # noqa: E402


def test(env):
    w = setup(env, extra_args=["--mode", "socks5", "--proxyauth", "alice:s3cret"], plain=False)
    socks = f"127.0.0.1:{w.mitmd.port}"
    url = f"https://www.origin.test:{w.tls.port}/headers"
    refused = 0

    step("curl --socks5-hostname --proxy-user alice:s3cret https://... -> 200 (intercepted)")
    rc, code, _, body, err = curl(env, ["--socks5-hostname", socks, "--proxy-user",
                                        "alice:s3cret"], url, cafile=w.mitmd.ca_cert)
    check(rc == 0 and code == 200, f"curl rc {rc}, HTTP {code}: {err.strip()}")
    check("proxy-authorization" not in echoed_fields(body), "the origin saw Proxy-Authorization")

    step("curl --socks5-hostname with a wrong password -> refused, no HTTP")
    rc, code, _, _, err = curl(env, ["--socks5-hostname", socks, "--proxy-user", "alice:nope"],
                               url, cafile=w.mitmd.ca_cert)
    info(f"curl rc {rc}: {err.strip()}")
    check(rc != 0 and code == 0, f"a wrong password got through: rc {rc}, HTTP {code}")
    refused += 1

    step("curl --socks5-hostname without credentials -> refused (no acceptable method)")
    rc, code, _, _, err = curl(env, ["--socks5-hostname", socks], url, cafile=w.mitmd.ca_cert)
    info(f"curl rc {rc}: {err.strip()}")
    check(rc != 0 and code == 0, f"no credentials got through: rc {rc}, HTTP {code}")
    refused += 1

    step("by hand: offer no-auth and user/pass -> method 0x02; right password -> 01 00, then "
         "CONNECT succeeds")
    sock, method, auth = socks5_login(w.mitmd.port, b"\x00\x02", "alice", "s3cret")
    check(method == b"\x05\x02", f"method reply {method!r}, expected 05 02")
    check(auth == b"\x01\x00", f"RFC 1929 status {auth!r}, expected 01 00")
    rep = socks5_request(sock, "www.origin.test", w.tls.port)
    check(rep == 0, f"CONNECT reply {rep}, expected 0 (succeeded)")
    sock.close()

    step("by hand: wrong password -> 01 01, then the connection closes")
    sock, method, auth = socks5_login(w.mitmd.port, b"\x02", "alice", "s3creT")
    check(method == b"\x05\x02" and auth == b"\x01\x01", f"method {method!r}, status {auth!r}")
    check(sock.recv(1) == b"", "the proxy kept the connection open after a failed login")
    sock.close()
    refused += 1

    step("by hand: offer only 'no authentication' -> 05 FF")
    sock, method, _ = socks5_login(w.mitmd.port, b"\x00")
    check(method == b"\x05\xff", f"method reply {method!r}, expected 05 ff")
    sock.close()
    refused += 1

    stats = {}

    def counted():
        nonlocal stats
        stats = mitmd_stats(w.mitmd)
        return stats.get("auth_failed", -1) >= refused

    wait_until(counted, 5, interval=0.3)
    check(stats.get("auth_failed") == refused,
          f"auth_failed={stats.get('auth_failed')}, expected {refused}")


if __name__ == "__main__":
    run(test, __doc__)
