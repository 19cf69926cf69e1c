#!/usr/bin/env python3
"""Everything a worker will load or compile is checked by the master before it says
"listening": a missing or non-PEM --upstream-ca, a bad --ignore-hosts/--allow-hosts regex, a
-w file in a missing directory, a cipher list BoringSSL refuses, an unresolvable --listen-host.
Each: one line naming the option and the real cause, exit 2, no worker started."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, info, run, step  # noqa: E402


def test(env):
    notpem = env.path("notpem.txt")
    with open(notpem, "w") as f:
        f.write("this is not a certificate\n")
    cases = [
        (["--upstream-ca", "/nope.pem"], ["--upstream-ca", "/nope.pem",
                                           "No such file or directory"]),
        (["--upstream-ca", notpem], ["--upstream-ca", "no PEM certificate"]),
        (["--upstream-ca", env.tmp], ["--upstream-ca", "Is a directory"]),
        (["--ignore-hosts", "(["], ["--ignore-hosts", "(["]),
        (["--allow-hosts", "a{1"], ["--allow-hosts", "a{1"]),
        (["--set", "ignore_hosts=ok", "--set", "ignore_hosts=*bad["], ["--ignore-hosts"]),
        (["-w", "/nonexistent/dir/f.jsonl"], ["-w", "/nonexistent/dir/f.jsonl",
                                              "No such file or directory"]),
        (["-w", env.tmp], ["-w", "Is a directory"]),
        (["--set", "ciphers_client=NOT-A-CIPHER"], ["ciphers_client", "NOT-A-CIPHER"]),
        (["--set", "ciphers_server=RC4-MD5:bogus"], ["ciphers_server"]),
        (["--listen-host", "no-such-host.invalid"], ["--listen-host", "no-such-host.invalid"]),
    ]
    for args, musts in cases:
        step(f"mitmd {' '.join(args)} -> exit 2, one line naming {musts}")
        confdir = env.path("conf")
        cp = env.run_cmd([env.mitmd_bin, "--confdir", confdir, "-p", "0", "--workers", "1"]
                         + args, timeout=15)
        lines = [ln for ln in cp.stderr.splitlines() if ln.strip()]
        info(f"exit {cp.returncode}: {cp.stderr.strip()!r}")
        check(cp.returncode == 2, f"exited {cp.returncode}, expected 2 (stderr {cp.stderr!r})")
        check("listening on" not in cp.stderr, "it said 'listening on' first")
        check(len(lines) == 1, f"expected one line, got {lines}")
        for must in musts:
            check(must in lines[0], f"the line does not name {must!r}: {lines[0]!r}")

    step("-w FILE in an existing directory is created before start, mode 0600 (it will hold "
         "decrypted traffic)")
    flows = env.path("flows.jsonl")
    m = env.mitmd(args=["-w", flows])
    check(os.path.isfile(flows), "-w file not created")
    mode = os.stat(flows).st_mode & 0o777
    check(mode == 0o600, f"-w file created with mode {mode:04o}, expected 0600")
    m.stop()


if __name__ == "__main__":
    run(test, __doc__)
