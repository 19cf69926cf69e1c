#!/usr/bin/env python3
"""mitmdump's -r / --rfile on a -w recording made by mitmd against nginx (HTTP/1.1 and
HTTP/2 GETs, a 404, a 502 from a closed port): `mitmd -n -r FILE` prints the very lines mitmd
printed live, in order, and exits 0 (a request tunnelled by CONNECT to another host than its
Host field's shows the CONNECT target again, with --showhost the Host field's, and `~d`
matches either name); a filter selects lines and -w gets the selected records
byte for byte; --set readfile_filter drops records before anything else; -q prints nothing;
-r without -n also exits once read (mitmdump without --keepserving), with --keepserving it
then proxies; a file that is not a recording exits 2 naming it, a bad line later is named and
skipped (exit 1); -r and -w on the same file are refused."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (check, curl, info, run, standard_setup, step,  # noqa: E402
                     wait_until, free_port)


def lines_of(text):
    return [ln for ln in text.splitlines() if ln.strip()]


def test(env):
    w = standard_setup(env, origin=False, flows=True, files={"1k": os.urandom(1024)})
    m, port = w.mitmd, w.nginx.h2_port
    conf = m.confdir

    step("record: HTTP/1.1 and HTTP/2 GETs, a 404, a 502 from a closed port, a CONNECT to "
         "127.0.0.1 with Host www.origin.test")
    for path, http, want in (("/1k", "--http1.1", 200), ("/1k", "--http2", 200),
                             ("/missing", "--http1.1", 404)):
        code, _, err = curl(env, m.port, f"https://www.origin.test:{port}{path}",
                            cafile=m.ca_cert, extra=[http])
        check(code == want, f"{http} {path}: HTTP {code}, want {want}: {err.strip()}")
    closed = free_port()
    code, _, _ = curl(env, m.port, f"http://www.origin.test:{closed}/x")
    check(code == 502, f"closed port: HTTP {code}")
    code, _, err = curl(env, m.port, f"https://www.origin.test:{port}/1k", cafile=m.ca_cert,
                        extra=["--http1.1", "--connect-to",
                               f"www.origin.test:{port}:127.0.0.1:{port}"])
    check(code == 200, f"CONNECT 127.0.0.1: HTTP {code}: {err.strip()}")
    check(wait_until(lambda: len(lines_of(m.stdout())) >= 5, 5), f"live lines:\n{m.stdout()}")
    m.stop()
    live = lines_of(m.stdout())
    with open(w.flows, "rb") as f:
        records = f.read().splitlines(keepends=True)
    check(len(live) == 5 and len(records) == 5, f"{len(live)} lines, {len(records)} records")
    check(f": GET https://127.0.0.1:{port}/1k HTTP/1.1 << 200" in live[4],
          f"live line of the CONNECT to 127.0.0.1: {live[4]}")

    def mitmd(*args, timeout=30):
        return env.run_cmd([env.mitmd_bin, "--confdir", conf, "-p", "0"] + list(args),
                           timeout=timeout)

    step("mitmd -n -r FILE: the live lines again, in order; exit 0")
    cp = mitmd("-n", "-r", w.flows)
    info(cp.stdout)
    check(cp.returncode == 0 and lines_of(cp.stdout) == live,
          f"rc {cp.returncode}, lines:\n{cp.stdout}\nlive:\n" + "\n".join(live))

    step("a filter selects lines, -w gets those records byte for byte")
    out = env.path("selected.jsonl")
    cp = mitmd("-n", "-r", w.flows, "-w", out, "~c 404 | ~e")
    got = lines_of(cp.stdout)
    check(cp.returncode == 0 and len(got) == 2 and "<< 404" in got[0] and "error:" in got[1],
          f"rc {cp.returncode}: {cp.stdout}")
    with open(out, "rb") as f:
        check(f.read() == records[2] + records[3], "-w did not get records 3 and 4 as read")
    check(os.stat(out).st_mode & 0o777 == 0o600, "the -w file is not 0600")

    step("--set readfile_filter drops records before printing and -w")
    out2 = env.path("no-errors.jsonl")
    cp = mitmd("-n", "-r", w.flows, "-w", out2, "--set", "readfile_filter=!~e")
    check(cp.returncode == 0 and lines_of(cp.stdout) == live[:3] + live[4:], f"{cp.stdout}")
    with open(out2, "rb") as f:
        check(f.read() == b"".join(records[:3] + records[4:]),
              "readfile_filter: -w got other records")

    step("the CONNECT target read back: ~d matches it and the Host field's name; --showhost")
    cp = mitmd("-n", "-r", w.flows, "~d 127.0.0.1")
    check(cp.returncode == 0 and lines_of(cp.stdout) == [live[4]], f"~d 127.0.0.1: {cp.stdout}")
    cp = mitmd("-n", "-r", w.flows, "~d www.origin.test")
    check(cp.returncode == 0 and lines_of(cp.stdout) == live, f"~d www.origin.test: {cp.stdout}")
    cp = mitmd("-n", "-r", w.flows, "--showhost", "~d 127.0.0.1")
    check(cp.returncode == 0 and len(lines_of(cp.stdout)) == 1 and
          f": GET https://www.origin.test:{port}/1k HTTP/1.1 << 200" in cp.stdout,
          f"--showhost: {cp.stdout}")

    step("-q prints nothing; -r without -n exits once read (no --keepserving)")
    cp = mitmd("-n", "-q", "-r", w.flows)
    check(cp.returncode == 0 and cp.stdout == "", f"-q: rc {cp.returncode} {cp.stdout!r}")
    cp = mitmd("-r", w.flows, timeout=15)
    check(cp.returncode == 0 and lines_of(cp.stdout) == live, f"-r alone: {cp.returncode}")
    check("listening" not in cp.stderr, f"-r alone started the proxy: {cp.stderr}")

    step("--keepserving: the file's lines, then the proxy runs and prints a new one")
    k = env.mitmd(args=["--upstream-ca", w.pki.ca_cert, "--resolve", "*.origin.test=127.0.0.1",
                        "-r", w.flows, "--keepserving"], name="keep")
    code, _, err = curl(env, k.port, f"https://www.origin.test:{port}/1k", cafile=k.ca_cert)
    check(code == 200, f"--keepserving: HTTP {code} {err.strip()}")
    check(wait_until(lambda: len(lines_of(k.stdout())) == 6, 5), f"keep:\n{k.stdout()}")
    check(lines_of(k.stdout())[:5] == live, f"keep: the read lines first:\n{k.stdout()}")

    step("not a recording: exit 2 naming it; a bad line later: named, skipped, exit 1")
    bad = env.path("flows.mitm")
    with open(bad, "wb") as f:
        f.write(b"2041:5:state;")
    cp = mitmd("-n", "-r", bad)
    check(cp.returncode == 2 and "not a mitmd -w recording" in cp.stderr and cp.stdout == "",
          f"rc {cp.returncode}: {cp.stderr}")
    mixed = env.path("mixed.jsonl")
    with open(mixed, "wb") as f:
        f.write(records[0] + b"{\"cut\n" + records[1])
    cp = mitmd("-n", "-r", mixed)
    check(cp.returncode == 1 and f"{mixed}:2: not JSON" in cp.stderr and
          lines_of(cp.stdout) == live[:2], f"rc {cp.returncode}: {cp.stderr} {cp.stdout}")

    step("-r - reads standard input; records of several listeners name each one's mode")
    cp = env.run_cmd([env.mitmd_bin, "--confdir", conf, "-n", "-r", "-"],
                     input=b"".join(records))
    check(cp.returncode == 0 and lines_of(cp.stdout.decode()) == live, f"-r -: {cp.stdout!r}")
    modes = env.path("modes.jsonl")
    with open(modes, "wb") as f:
        f.write(records[0] + records[1].replace(b'"proxy_mode":"regular"',
                                                b'"proxy_mode":"socks5@1080"'))
    cp = mitmd("-n", "-r", modes)
    got = lines_of(cp.stdout)
    check(cp.returncode == 0 and len(got) == 2 and " [regular]: GET" in got[0] and
          " [socks5@1080]: GET" in got[1], f"modes: {cp.stdout}")
    check(lines_of(mitmd("-n", "-r", w.flows).stdout) == live, "one mode: no mode tag")
    cp = mitmd("-n", "-r", w.flows, "--set", "readfile_filter=~c abc")
    check(cp.returncode == 2 and "readfile_filter" in cp.stderr, f"bad readfile_filter: {cp}")

    step("-r and -w on the same file: refused, the file unchanged")
    cp = mitmd("-n", "-r", w.flows, "-w", w.flows)
    check(cp.returncode == 2 and "same file" in cp.stderr, f"rc {cp.returncode}: {cp.stderr}")
    with open(w.flows, "rb") as f:
        check(f.read() == b"".join(records), "the recording changed")
    cp = mitmd("-n")
    check(cp.returncode == 2 and "-r" in cp.stderr, f"-n alone: rc {cp.returncode}")


if __name__ == "__main__":
    run(test, __doc__)
