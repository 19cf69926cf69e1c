#!/usr/bin/env python3
"""Headless Chromium through mitmd opens http://mitm.it/ (the onboarding page): --dump-dom of
the page has the links to /cert/pem, /cert/p12 and /cert/cer and the platform sections, and
--screenshot produces a PNG of it (MITMD_ONBOARDING_SCREENSHOT=PATH keeps a copy, e.g. for
docs/onboarding.png). Both Chromium runs go at once to stay within the suite's budget. Skips
(77) when Chromium is not installed (Debian package `chromium`)."""
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, info, run, step  # noqa: E402

# No background requests to Google services, no HTTPS upgrade probe: the proxy sees only the
# page's own requests, and Chromium does not wait for those that would fail.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--no-default-browser-check", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-default-apps",
         "--disable-extensions", "--disable-dev-shm-usage",
         "--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable,"
         "OptimizationHints,MediaRouter,Translate"]


def test(env):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("SKIP: chromium is not installed (tests/install-deps installs it)")
        sys.exit(77)
    m = env.mitmd()
    shot = env.path("onboarding.png")
    proxy = f"--proxy-server=http://127.0.0.1:{m.port}"
    procs = []
    t0 = time.monotonic()
    for name, extra in (("dom", ["--dump-dom"]),
                        ("shot", [f"--screenshot={shot}", "--window-size=1000,800"])):
        out = open(env.path(f"chromium-{name}.out"), "wb")
        err = open(env.path(f"chromium-{name}.err"), "wb")
        env.add_log(f"chromium {name} stderr", err.name)
        procs.append((name, out.name, subprocess.Popen(
            [chromium, *FLAGS, f"--user-data-dir={env.path('chromium-' + name)}", proxy, *extra,
             "http://mitm.it/"], stdout=out, stderr=err, start_new_session=True)))
    try:
        for name, _, p in procs:
            p.wait(timeout=60)
    finally:
        for _, _, p in procs:
            if p.poll() is None:
                os.killpg(p.pid, 9)
                p.wait()
    info(f"both Chromium runs took {time.monotonic() - t0:.1f}s")

    step("--dump-dom of http://mitm.it/ has the three certificate links and the platforms")
    dom = open(procs[0][1], encoding="utf-8", errors="replace").read()
    check("Install mitmd" in dom, f"not the onboarding page: {dom[:300]!r}")
    for ext in ("pem", "p12", "cer"):
        check(f'href="/cert/{ext}"' in dom, f"no link to /cert/{ext} in the DOM")
    for p in ("Windows", "macOS", "Linux", "Firefox", "iOS", "Android"):
        check(p in dom, f"no {p} section in the DOM")

    step("--screenshot wrote a PNG of the page")
    check(os.path.exists(shot), "no screenshot file")
    data = open(shot, "rb").read()
    info(f"screenshot {len(data)} bytes")
    check(data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10000, "not a PNG of a page")
    keep = os.environ.get("MITMD_ONBOARDING_SCREENSHOT")
    if keep:
        shutil.copyfile(shot, keep)
        info(f"copied to {keep}")

    step("the proxy served the page itself: flow lines for http://mitm.it/, no upstream")
    out = m.stdout()
    check("GET http://mitm.it/ HTTP/1.1 << 200" in out, f"no 200 flow line for the page: {out}")
    m.check_no_crash()


if __name__ == "__main__":
    run(test, __doc__)
