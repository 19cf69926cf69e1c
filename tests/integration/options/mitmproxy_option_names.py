#!/usr/bin/env python3
"""mitmproxy's option names work: long options with mitmproxy's spelling and every option as
`--set NAME=VALUE` (listen_port, ssl_insecure, resolve, ignore_hosts, workers, ...); --help
lists each option with its --set name and the signals; an unknown name or a bad value is one
line naming it, exit 2."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, curl, free_port, info, run, standard_setup, step  # noqa: E402

BAD = [
    (["--set", "bogus_option=1"], "bogus_option"),
    (["--set", "http2=maybe"], "http2"),
    (["--set", "listen_port=99999"], "listen_port"),
    (["--set", "workers=zero"], "workers"),
    (["--set", "connection_strategy=lazy"], "connection_strategy"),
    (["--listen-port", "http"], "--listen-port"),
    (["--shutdown-timeout", "soon"], "--shutdown-timeout"),
    (["--no-such-flag"], "--no-such-flag"),
    (["--ignore-hosts", "a", "--allow-hosts", "b"], "--allow-hosts"),
]


def test(env):
    step("mitmd --help lists mitmproxy's names, the --set form of each option and the signals")
    cp = env.run_cmd([env.mitmd_bin, "--help"], check_rc=0)
    for want in ["--listen-host", "--listen-port", "--confdir", "--ssl-insecure",
                 "--ignore-hosts", "--allow-hosts", "--save-stream-file", "--set",
                 "[ssl_insecure]", "[listen_port]", "[ignore_hosts]", "[workers]",
                 "[cert_cache_mb]", "[ciphers_client]", "[ciphers_server]", "[user]",
                 "[shutdown_timeout]", "config.yaml", "SIGHUP", "SIGUSR1", "SIGTERM", "SIGINT"]:
        check(want in cp.stdout, f"--help does not mention {want}")

    step("unknown names and bad values: one line naming them, exit 2, nothing started")
    for args, must in BAD:
        cp = env.run_cmd([env.mitmd_bin, "--confdir", env.path("never"), "-p", "0"] + args,
                         timeout=10)
        lines = [ln for ln in cp.stderr.splitlines() if ln.strip()]
        info(f"{' '.join(args)} -> exit {cp.returncode}: {cp.stderr.strip()!r}")
        check(cp.returncode == 2, f"{args} exited {cp.returncode}, expected 2")
        check(len(lines) == 1, f"{args}: expected one line on stderr, got {lines}")
        check(must in lines[0], f"{args}: the error does not name {must}: {lines[0]!r}")
        check(not os.path.exists(env.path("never")), f"{args}: a confdir was created")

    port = free_port()
    step(f"--set listen_port={port} --set ssl_insecure=true --set workers=2 (after -p 0 "
         f"--workers 1 on the same command line: the last one wins)")
    w = standard_setup(env, workers=2, origin=False,
                       extra_args=["--set", f"listen_port={port}", "--set", "ssl_insecure=true",
                                   "--set", "workers=2", "--set", "http2=false",
                                   "--set", "resolve=*.origin.test=127.0.0.1",
                                   "--set", "cert_cache_mb=8", "--set", "ciphers_client="
                                   "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256",
                                   "--set", "shutdown_timeout=5", "--set", "user=nobody"])
    check(w.mitmd.port == port, f"mitmd listens on {w.mitmd.port}, --set listen_port={port}")
    check(len(w.mitmd.wait_workers(2) or []) == 2, "--set workers=2 did not start 2 workers")
    url = f"https://selfsigned.origin.test:{w.nginx.ports['selfsigned']}/1k"
    code, body, err = curl(env, w.mitmd.port, url, cafile=w.mitmd.ca_cert)
    info(f"self-signed upstream with --set ssl_insecure=true: HTTP {code}")
    check(code == 200 and len(body) == 1024,
          f"--set ssl_insecure=true did not skip verification: HTTP {code} {err.strip()}")

    step("--set ignore_hosts=REGEX (repeatable) passes the matching host through untouched")
    m = env.mitmd(args=["--upstream-ca", w.pki.ca_cert, "--set", "ignore_hosts=^nothing$",
                        "--set", r"ignore_hosts=^www\.origin\.test$", "--resolve",
                        "*.origin.test=127.0.0.1"], name="mitmd-ignore")
    url = f"https://www.origin.test:{w.nginx.ports['valid']}/1k"
    code, body, err = curl(env, m.port, url, cafile=w.pki.ca_cert)
    check(code == 200, f"an ignored host must show the origin's own certificate (curl trusting "
          f"only the origin CA): HTTP {code} {err.strip()}")


if __name__ == "__main__":
    run(test, __doc__)
