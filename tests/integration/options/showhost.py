#!/usr/bin/env python3
"""mitmproxy's --showhost. mitmdump prints request.url: for a request inside a CONNECT tunnel
(HTTP/1.1 and HTTP/2) its host is the CONNECT target, for reverse mode the server's, whatever
the Host field (or :authority) says; --showhost prints pretty_url, from the Host field. The
origin gets the client's Host either way (a display option), the -w record keeps pretty_url
(as filters and map_remote see it), and ~d matches the target as well as the Host field's host
(mitmproxy's flowfilter: request.host or pretty_host). mitmd used to print the Host field's
URL always and refuse --showhost."""
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (check, curl, info, read_records, run, sha256_bytes,  # noqa: E402
                     standard_setup, step, wait_until)


def line_for(m, pattern, timeout=5):
    """line_for waits for a flow line of mitmd `m` matching regex `pattern`; returns it or
    None (flow lines are written after the response went out)."""
    rx = re.compile(pattern)
    return wait_until(lambda: next((ln for ln in m.stdout().splitlines() if rx.search(ln)),
                                   None), timeout)


def test(env):
    w = standard_setup(env, origin=False, flows=True)
    port = w.nginx.h2_port
    body = open(os.path.join(w.nginx.root, "1k"), "rb").read()
    base = ["--upstream-ca", w.pki.ca_cert, "--resolve", "*.origin.test=127.0.0.1"]
    alias = f"alias.origin.test:{port}"

    def get(m, path, http, host=alias):
        """get fetches https://www.origin.test:PORT/path through mitmd `m` with Host `host`
        (curl sends it as :authority over HTTP/2); checks status and body."""
        code, got, err = curl(env, m.port, f"https://www.origin.test:{port}{path}",
                              cafile=m.ca_cert, extra=[http, "-H", f"Host: {host}"])
        want = body if path == "/1k" else None
        check(code == 200 and (want is None or sha256_bytes(got) == sha256_bytes(want)),
              f"{http} {path} with Host {host}: HTTP {code} {got[:200]!r} {err.strip()}")
        return got

    step("default: the line shows the CONNECT target, the origin gets the client's Host")
    for http, ver in (("--http1.1", "HTTP/1.1"), ("--http2", "HTTP/2.0")):
        got = get(w.mitmd, "/authority", http).decode()
        check(alias in got, f"{http}: the origin saw {got!r}, not {alias}")
        get(w.mitmd, "/1k", http)
        ln = line_for(w.mitmd, r": GET https://[^ ]*/1k %s << 200" % re.escape(ver))
        info(f"{http}: {ln!r}")
        check(ln is not None and f"GET https://www.origin.test:{port}/1k {ver} << 200" in ln,
              f"{http}: the line does not show the CONNECT target:\n{w.mitmd.stdout()}")

    step("default: the -w record keeps the Host field's URL (pretty_url)")
    recs = wait_until(lambda: [r for r in read_records(w.flows)
                               if r["request"]["url"].endswith("/1k")] or None, 5)
    urls = sorted({r["request"]["url"] for r in recs or []})
    info(f"recorded: {urls}")
    check(urls == [f"https://{alias}/1k"], f"records: {urls}")

    step("--showhost: the line shows the Host field's (HTTP/2: :authority's) URL")
    sh = env.mitmd(args=base + ["--showhost"], name="mitmd-showhost")
    for http, ver in (("--http1.1", "HTTP/1.1"), ("--http2", "HTTP/2.0")):
        get(sh, "/1k", http)
        ln = line_for(sh, r": GET https://[^ ]*/1k %s << 200" % re.escape(ver))
        info(f"{http}: {ln!r}")
        check(ln is not None and f"GET https://{alias}/1k {ver} << 200" in ln,
              f"--showhost {http}: the line does not show the Host field:\n{sh.stdout()}")

    step("~d matches the CONNECT target too: a view filter on www.origin.test")
    flt = env.mitmd(args=base + ["--set", r"dumper_filter=~d ^www\.origin\.test$"],
                    name="mitmd-filter")
    get(flt, "/1k", "--http1.1")  # CONNECT www, Host alias: matches by the target
    code, got, err = curl(env, flt.port, f"https://alias.origin.test:{port}/1k",
                          cafile=flt.ca_cert, extra=["--http1.1"])  # CONNECT alias, Host alias
    check(code == 200 and got == body, f"CONNECT alias: HTTP {code} {err.strip()}")
    ln = line_for(flt, r"GET https://www\.origin\.test:%d/1k HTTP/1\.1 << 200" % port)
    check(ln is not None, f"the CONNECT-www request was not shown:\n{flt.stdout()}")
    time.sleep(0.5)  # the second exchange's line, if it were shown, is written by now
    check("alias.origin.test" not in flt.stdout(),
          f"a request to alias.origin.test matched ~d ^www:\n{flt.stdout()}")

    step("reverse mode, keep_host_header=true: the server's URL, or the client's with --showhost")
    rev = ["--mode", f"reverse:https://www.origin.test:{port}", "--set", "keep_host_header=true"]
    for extra, name in (([], "rev"), (["--showhost"], "rev-showhost")):
        m = env.mitmd(args=base + rev + extra, name=name)
        cp = subprocess.run(["curl", "-sS", "--noproxy", "*", "--max-time", "20", "--cacert",
                             m.ca_cert, "--resolve", f"front.test:{m.port}:127.0.0.1",
                             f"https://front.test:{m.port}/authority"],
                            capture_output=True, text=True, timeout=30)
        check(cp.returncode == 0 and f"front.test:{m.port}" in cp.stdout,
              f"{name}: the origin saw {cp.stdout!r} {cp.stderr.strip()}")
        want = (f"https://front.test:{m.port}/authority" if extra
                else f"https://www.origin.test:{port}/authority")
        ln = line_for(m, r": GET https://[^ ]*/authority ")
        info(f"{name}: {ln!r}")
        check(ln is not None and f"GET {want} " in ln, f"{name}: want {want}:\n{m.stdout()}")


if __name__ == "__main__":
    run(test, __doc__)
