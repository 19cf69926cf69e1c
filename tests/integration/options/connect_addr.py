#!/usr/bin/env python3
"""mitmproxy's --set connect_addr=IP: every upstream connection leaves from that local address
(an origin of this test answers with the address it sees), for plain HTTP and for intercepted
HTTPS; without it the kernel picks (127.0.0.1 toward 127.0.0.1). An address of the other
family than the server's, or one that is not on this machine, gets the client a 502 naming
connect_addr (bind fails locally: nothing is sent; for HTTPS the CONNECT is the 502 and
its flow line names the reason); a value that is not a numeric address
stops start-up with one line naming the option, exit 2."""
import os
import ssl
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (answer_origin, check, check_start_refused, curl, info, run,  # noqa: E402
                     standard_setup, step, wait_until)


def test(env):
    w = standard_setup(env, origin=False)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*w.pki.certs["valid"])
    peer = lambda h: h.client_address[0].encode()  # noqa: E731 - the origins' answer
    plain_port, tls_port = answer_origin(env, peer), answer_origin(env, peer, ctx)
    base = ["--upstream-ca", w.pki.ca_cert, "--resolve", "*.origin.test=127.0.0.1"]

    def seen(m):
        """seen returns the origins' view of mitmd's address: (plain HTTP, intercepted HTTPS)
        as (status, body) pairs."""
        out = []
        for url in (f"http://www.origin.test:{plain_port}/",
                    f"https://www.origin.test:{tls_port}/"):
            code, body, err = curl(env, m.port, url, cafile=m.ca_cert)
            out.append((code, body.decode(errors="replace").strip()))
        return out

    step("default: the kernel picks the local address (127.0.0.1 toward 127.0.0.1)")
    got = seen(w.mitmd)
    info(f"default: {got}")
    check(got == [(200, "127.0.0.1"), (200, "127.0.0.1")], f"default: {got}")

    step("--set connect_addr=127.0.0.2: both origins see 127.0.0.2")
    m = env.mitmd(args=base + ["--set", "connect_addr=127.0.0.2"], name="mitmd-addr")
    got = seen(m)
    info(f"connect_addr=127.0.0.2: {got}")
    check(got == [(200, "127.0.0.2"), (200, "127.0.0.2")], f"connect_addr=127.0.0.2: {got}")

    for addr, what, must in (("::1", "IPv6 address toward an IPv4 server", "address family"),
                             ("192.0.2.1", "address not on this machine", "connect_addr")):
        step(f"--set connect_addr={addr} ({what}): 502 naming connect_addr, mitmd unharmed")
        bad = env.mitmd(args=base + ["--set", f"connect_addr={addr}"], name=f"mitmd-{addr}")
        got = seen(bad)
        info(f"connect_addr={addr}: {got}")
        code, body = got[0]
        check(code == 502 and must in body and "connect_addr" in body,
              f"connect_addr={addr}, plain HTTP: HTTP {code} {body!r}")
        # HTTPS: the CONNECT itself is answered 502 (curl reports no HTTP code); its flow line
        # names the reason
        line = wait_until(lambda: next((ln for ln in bad.stdout().splitlines()
                                        if f"CONNECT www.origin.test:{tls_port}" in ln), None), 5)
        info(f"CONNECT flow line: {line!r}")
        check(got[1][0] == 0 and line is not None and "502" in line and must in line,
              f"connect_addr={addr}, CONNECT: {got[1]} {line!r}")
        bad.check_no_crash()

    step("--set connect_addr=localhost (not numeric): one line naming it, exit 2")
    check_start_refused(env, ["--set", "connect_addr=localhost"], "connect_addr")
    w.mitmd.check_no_crash()
    m.check_no_crash()


if __name__ == "__main__":
    run(test, __doc__)
