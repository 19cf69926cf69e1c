#!/usr/bin/env python3
"""HTTP/2: a client offering h2 to an h2 upstream talks HTTP/2 end to end through mitmd
(ALPN mirrored), multiplexed downloads are intact; with --no-http2 the same client gets
HTTP/1.1; an h2-offering client to an HTTP/1.1-only upstream gets HTTP/1.1."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, info, run, sha256_bytes, standard_setup, step  # noqa: E402


def curl_version(env, m, url, outs=None, parallel=False):
    """curl_version GETs url(s) with --http2 through m; returns (versions, codes, stderr)."""
    argv = ["curl", "-sS", "--http2", "-x", f"http://127.0.0.1:{m.port}", "--cacert", m.ca_cert,
            "--max-time", "20", "-w", "%{http_version} %{http_code}\\n"]
    if parallel:
        argv += ["--parallel", "--parallel-max", "10"]
    urls = url if isinstance(url, list) else [url]
    outs = outs or [env.path(f"h2-{i}.out") for i in range(len(urls))]
    for u, o in zip(urls, outs):
        argv += ["-o", o, u]
    cp = env.run_cmd(argv, timeout=30)
    pairs = [ln.split() for ln in cp.stdout.splitlines() if ln.strip()]
    return [p[0] for p in pairs], [p[1] for p in pairs], cp.stderr, outs


def test(env):
    files = {f"f{i}": os.urandom(50000 + i) for i in range(10)}
    w = standard_setup(env, files=files, origin=False)
    h2 = w.nginx.h2_port

    step("curl --http2 via mitmd to an h2 upstream negotiates HTTP/2 and gets the file")
    vers, codes, err, outs = curl_version(env, w.mitmd, f"https://www.origin.test:{h2}/f0")
    info(f"http_version {vers}, code {codes}, {err.strip()}")
    check(codes == ["200"], f"HTTP {codes}: {err.strip()}")
    with open(outs[0], "rb") as f:
        check(f.read() == files["f0"], "body differs over HTTP/2")
    check(vers == ["2"], f"client got HTTP/{vers[0] if vers else '?'}, expected 2 (mitmd "
          "should mirror the upstream's ALPN choice)")

    step("10 parallel downloads multiplexed over one HTTP/2 connection are intact")
    urls = [f"https://www.origin.test:{h2}/f{i}" for i in range(10)]
    vers, codes, err, outs = curl_version(env, w.mitmd, urls, parallel=True)
    check(codes == ["200"] * 10, f"codes {codes}: {err.strip()}")
    for i, o in enumerate(outs):
        with open(o, "rb") as f:
            check(sha256_bytes(f.read()) == sha256_bytes(files[f"f{i}"]), f"f{i} differs")

    step("h2-offering client to an HTTP/1.1-only upstream gets HTTP/1.1")
    vers, codes, err, _ = curl_version(env, w.mitmd,
                                       f"https://www.origin.test:{w.nginx.ports['valid']}/f1")
    check(codes == ["200"] and vers == ["1.1"], f"versions {vers}, codes {codes}: {err.strip()}")

    step("with --no-http2 the client gets HTTP/1.1 from the h2 upstream")
    m2 = env.mitmd(args=["--no-http2", "--upstream-ca", w.pki.ca_cert,
                         "--resolve", "*.origin.test=127.0.0.1"], name="mitmd-no-h2")
    vers, codes, err, _ = curl_version(env, m2, f"https://www.origin.test:{h2}/f2")
    check(codes == ["200"] and vers == ["1.1"], f"--no-http2: versions {vers}, codes {codes}: "
          f"{err.strip()}")


if __name__ == "__main__":
    run(test, __doc__)
