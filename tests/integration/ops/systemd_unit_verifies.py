#!/usr/bin/env python3
"""contrib/systemd/mitmd.service: `systemd-analyze verify` accepts it (with ExecStart pointed
at the binary under test), it is Type=notify, reloads with SIGHUP, stops with SIGTERM to the
master only, gives the drain more time than --shutdown-timeout, and is hardened
(ProtectSystem=strict, NoNewPrivileges, ReadWritePaths for the confdir). Its ExecStart
arguments start mitmd (for real, with a temp confdir and loopback ports).
The verify step is skipped with a message where systemd-analyze is missing."""
import os
import re
import shlex
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from harness import check, info, run, step  # noqa: E402

UNIT = os.path.join(HERE, "..", "..", "..", "contrib", "systemd", "mitmd.service")


def directives(text):
    """directives returns {key: [values]} of the unit (continuation lines joined)."""
    out = {}
    for line in text.replace("\\\n", " ").splitlines():
        line = line.strip()
        if not line or line[0] in "#;[":
            continue
        k, _, v = line.partition("=")
        out.setdefault(k.strip(), []).append(v.strip())
    return out


def test(env):
    with open(UNIT) as f:
        text = f.read()
    d = directives(text)
    step("the directives an operator relies on")
    want = {"Type": "notify", "ExecReload": "/bin/kill -HUP $MAINPID", "KillSignal": "SIGTERM",
            "KillMode": "mixed", "ProtectSystem": "strict", "NoNewPrivileges": "yes"}
    for k, v in want.items():
        check(d.get(k) == [v], f"{k}={d.get(k)}, want {v}")
    start = shlex.split(d["ExecStart"][0])
    confdir = start[start.index("--confdir") + 1]
    check(confdir in " ".join(d.get("ReadWritePaths", [])), "confdir not in ReadWritePaths")
    timeout = int(start[start.index("--shutdown-timeout") + 1])
    check(int(d["TimeoutStopSec"][0]) > timeout, "TimeoutStopSec not above --shutdown-timeout")

    step("mitmd accepts the unit's ExecStart arguments")
    args = start[1:]
    i = args.index("--confdir")
    del args[i:i + 2]  # the harness gives a temp confdir
    args[args.index("-p") + 1] = "0"
    args[args.index("--listen-host") + 1] = "127.0.0.1"
    args = [re.sub(r"metrics_listen=.*", "metrics_listen=127.0.0.1:0", a) for a in args]
    m = env.mitmd(args=args, workers=1)
    check("metrics on http://127.0.0.1:" in m.stderr(), "no metrics listener")
    m.stop()

    if shutil.which("systemd-analyze") is None:
        print("SKIP (verify): systemd-analyze is missing")
        return
    step("systemd-analyze verify")
    unit = env.path("mitmd.service")
    with open(unit, "w") as f:
        f.write(text.replace("/usr/local/bin/mitmd", env.mitmd_bin))
    cp = env.run_cmd(["systemd-analyze", "verify", unit], timeout=30)
    problems = [line for line in (cp.stdout + cp.stderr).splitlines()
                if "mitmd.service" in line]
    info(f"systemd-analyze verify: rc {cp.returncode}, {len(problems)} remarks on the unit")
    check(cp.returncode == 0 and not problems, f"systemd-analyze verify: {problems}")


if __name__ == "__main__":
    run(test, __doc__)
