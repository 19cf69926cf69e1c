#!/usr/bin/env python3
"""HTTP/2 over a long path: curl --http2 downloads 10 MB from an h2 nginx that is 25 ms away
each way over a 100 Mbit/s link (50 ms round trip, 12.5 MB/s: bench/delayline on loopback;
--rate 0 takes the rate limit off), once directly and once through
mitmd (CONNECT, mitmd's CA trusted; the delay line sits between mitmd and the origin, so
mitmd's receive window toward the origin is what the path needs). Interleaved runs, median of
each: the body is intact every time (SHA-256) and mitmd's body throughput is at least
--min-ratio (default 0.9) of the direct one. A fixed 64 KiB stream window caps the proxied
download at about 64 KiB per round trip (1.3 MB/s) whatever the path."""
import os
import re
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import TestFailure, check, info, run, sha256_bytes, standard_setup, step  # noqa: E402

SIZE = 10 * 1024 * 1024
OPTS = {"delayline": None, "delay-ms": "25", "rate": "12.5", "runs": "3", "min-ratio": "0.9"}


def take_args():
    """take_args removes this test's own options (--delayline PATH, --delay-ms, --rate MB/s
    (0 = unlimited; default 12.5 = 100 Mbit/s), --runs, --min-ratio) from sys.argv; harness.run parses the rest."""
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
    if OPTS["delayline"] is None or not os.access(OPTS["delayline"], os.X_OK):
        print(f"FAIL: delayline binary not given or not executable ({OPTS['delayline']}); "
              "run with --delayline BUILD/delayline")
        sys.exit(1)


def delay_line(env, target_port, name):
    """delay_line starts bench/delayline toward 127.0.0.1:target_port (stopped by PID at the
    end) and returns the port it listens on."""
    argv = [OPTS["delayline"], "-t", f"127.0.0.1:{target_port}", "-d", OPTS["delay-ms"]]
    if float(OPTS["rate"]) > 0:
        argv += ["-r", OPTS["rate"]]
    err = env.path(f"{name}.stderr")
    env.add_log(f"{name} stderr", err)
    with open(err, "ab") as e:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=e,
                                stdin=subprocess.DEVNULL, preexec_fn=harness._pdeathsig)
    env.stack.callback(lambda: (harness.stop_popen(proc, grace=2.0), proc.stdout.close()))
    line = proc.stdout.readline().decode()
    m = re.match(r"listening (\d+)", line)
    if not m:
        raise TestFailure(f"delayline did not start: {line!r} {harness.tail(err)}")
    info(f"{name}: pid {proc.pid}, port {m.group(1)} -> {target_port}, "
         f"{OPTS['delay-ms']} ms each way, rate {OPTS['rate']} MB/s (0 = unlimited)")
    return int(m.group(1))


def fetch(env, argv, out, want):
    """fetch runs one curl download and returns the body's MB/s (bytes over the time from the
    request going out to the last byte, so connection set-up is left out)."""
    cp = env.run_cmd(argv + ["-o", out, "-w",
                             "%{http_version} %{http_code} %{size_download} "
                             "%{time_pretransfer} %{time_total}"], timeout=90)
    parts = cp.stdout.split()
    check(cp.returncode == 0 and len(parts) == 5 and parts[:2] == ["2", "200"],
          f"curl exited {cp.returncode}: {cp.stdout!r} {cp.stderr.strip()}")
    with open(out, "rb") as f:
        got = f.read()
    check(len(got) == SIZE and sha256_bytes(got) == want,
          f"body: {len(got)} bytes, SHA-256 {'equal' if sha256_bytes(got) == want else 'differs'}")
    os.unlink(out)
    secs = float(parts[4]) - float(parts[3])
    return SIZE / secs / 1e6


def test(env):
    data = os.urandom(SIZE)
    want = sha256_bytes(data)
    w = standard_setup(env, files={"10m": data}, origin=False)
    m = w.mitmd
    port = delay_line(env, w.nginx.h2_port, "delayline")
    url = f"https://www.origin.test:{port}/10m"
    common = ["curl", "-sS", "--http2", "--max-time", "80"]
    direct = common + ["--cacert", w.pki.ca_cert, "--resolve", f"www.origin.test:{port}:127.0.0.1"]
    proxied = common + ["-x", f"http://127.0.0.1:{m.port}", "--cacert", m.ca_cert]
    runs = int(OPTS["runs"])

    step(f"{runs} x 10 MB direct and through mitmd, interleaved, over a "
         f"{2 * float(OPTS['delay-ms']):g} ms round trip; every body's SHA-256 equal")
    d_rates, p_rates = [], []
    for i in range(runs):
        d_rates.append(fetch(env, direct + [url], env.path("direct.bin"), want))
        p_rates.append(fetch(env, proxied + [url], env.path("proxied.bin"), want))
        info(f"run {i + 1}: direct {d_rates[-1]:.1f} MB/s, via mitmd {p_rates[-1]:.1f} MB/s")
    d, p = statistics.median(d_rates), statistics.median(p_rates)
    ratio = p / d
    print(f"RESULT direct_MBps={d:.2f} mitmd_MBps={p:.2f} ratio={ratio:.3f}", flush=True)

    step(f"mitmd's median throughput is at least {OPTS['min-ratio']}x the direct one")
    check(ratio >= float(OPTS["min-ratio"]),
          f"via mitmd {p:.2f} MB/s vs direct {d:.2f} MB/s: ratio {ratio:.3f} < "
          f"{OPTS['min-ratio']}")
    m.check_no_crash()


if __name__ == "__main__":
    take_args()
    run(test, __doc__)
