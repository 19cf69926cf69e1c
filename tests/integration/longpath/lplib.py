"""lplib.py - helpers for the long-path tests (Python 3 standard library only).

Owns: the tests' own options (--delayline PATH, --delay-ms, --rate, --runs, --min-ratio, and
--h2peer for tests that need the h2peer origin), bench/delayline processes (stopped by PID at
the end) and the median/ratio report. Builds on ../lib/harness.py."""
import os
import re
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import TestFailure, check, info  # noqa: E402

OPTS = {"delayline": None, "h2peer": None, "delay-ms": "25", "rate": "12.5", "runs": "3",
        "min-ratio": "0.9"}


def take_args(need_h2peer=False):
    """take_args removes the options above from sys.argv (harness.run parses the rest).
    --rate is the link in MB/s (default 12.5 = 100 Mbit/s; 0 = unlimited)."""
    argv = sys.argv
    for key in OPTS:
        flag = "--" + key
        if flag in argv:
            i = argv.index(flag)
            if i + 1 >= len(argv):
                print(f"FAIL: {flag} needs a value")
                sys.exit(1)
            OPTS[key] = argv[i + 1]
            del argv[i:i + 2]
    need = ["delayline"] + (["h2peer"] if need_h2peer else [])
    for key in need:
        if OPTS[key] is None or not os.access(OPTS[key], os.X_OK):
            print(f"FAIL: {key} binary not given or not executable ({OPTS[key]}); "
                  f"run with --{key} BUILD/{key}")
            sys.exit(1)


def delay_line(env, target_port, name):
    """delay_line starts bench/delayline toward 127.0.0.1:target_port with the options'
    delay and rate, and returns the port it listens on."""
    argv = [OPTS["delayline"], "-t", f"127.0.0.1:{target_port}", "-d", OPTS["delay-ms"]]
    if float(OPTS["rate"]) > 0:
        argv += ["-r", OPTS["rate"]]
    err = env.path(f"{name}.stderr")
    env.add_log(f"{name} stderr", err)
    with open(err, "ab") as e:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=e,
                                stdin=subprocess.DEVNULL, preexec_fn=harness._pdeathsig)

    def stop():
        harness.stop_popen(proc, grace=2.0)
        proc.stdout.close()
    env.stack.callback(stop)
    line = proc.stdout.readline().decode()
    m = re.match(r"listening (\d+)", line)
    if not m:
        raise TestFailure(f"delayline did not start: {line!r} {harness.tail(err)}")
    info(f"{name}: pid {proc.pid}, port {m.group(1)} -> {target_port}, "
         f"{OPTS['delay-ms']} ms each way, rate {OPTS['rate']} MB/s (0 = unlimited)")
    return int(m.group(1))


def compare(direct_fn, proxied_fn):
    """compare runs direct_fn and proxied_fn (each returns MB/s) interleaved --runs times,
    prints a RESULT line with the medians and checks the ratio against --min-ratio."""
    d_rates, p_rates = [], []
    for i in range(int(OPTS["runs"])):
        d_rates.append(direct_fn())
        p_rates.append(proxied_fn())
        info(f"run {i + 1}: direct {d_rates[-1]:.1f} MB/s, via mitmd {p_rates[-1]:.1f} MB/s")
    d, p = statistics.median(d_rates), statistics.median(p_rates)
    ratio = p / d
    print(f"RESULT direct_MBps={d:.2f} mitmd_MBps={p:.2f} ratio={ratio:.3f}", flush=True)
    harness.step(f"mitmd's median throughput is at least {OPTS['min-ratio']}x the direct one")
    check(ratio >= float(OPTS["min-ratio"]),
          f"via mitmd {p:.2f} MB/s vs direct {d:.2f} MB/s: ratio {ratio:.3f} < "
          f"{OPTS['min-ratio']}")
