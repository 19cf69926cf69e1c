#!/usr/bin/env python3
"""--map-local answers from local files over HTTP/1.1 and HTTP/2 without the origin: a file
spec serves one file for every matching URL; a directory spec maps the URL suffix to a file
under it (index.html for a directory), with Content-Type from the extension, a single Range
answered 206 (416 when unsatisfiable), 404 for a missing file, and `..` (encoded) or a symlink
leading outside the directory refused (403); bytes checked by SHA-256."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import check, info, run, step  # noqa: E402
import ruleslib  # noqa: E402


def test(env):
    root = env.mkdir("www")
    big = os.urandom(300 * 1024)  # larger than one buffer: read as the client drains
    with open(os.path.join(root, "app.js"), "wb") as f:
        f.write(big)
    os.makedirs(os.path.join(root, "docs"))
    with open(os.path.join(root, "docs", "index.html"), "wb") as f:
        f.write(b"<h1>docs</h1>\n")
    secret = env.path("secret.txt")
    with open(secret, "wb") as f:
        f.write(b"outside the mapped directory\n")
    os.symlink(secret, os.path.join(root, "leak.txt"))
    single = env.path("single.json")
    with open(single, "wb") as f:
        f.write(b'{"mocked": true}\n')

    # workers started as root run as nobody: they must reach the files (the secret too, so
    # that only mitmd's refusal keeps it out)
    os.chmod(env.tmp, 0o711)
    for d, _, files in os.walk(root):
        os.chmod(d, 0o755)
        for fn in files:
            os.chmod(os.path.join(d, fn), 0o644, follow_symlinks=False) if not os.path.islink(
                os.path.join(d, fn)) else None
    os.chmod(secret, 0o644)
    os.chmod(single, 0o644)

    ngx, m, _ = ruleslib.setup(env, extra_args=[
        "--map-local", "|~u /static/|//api.origin.test:\\d+/static/|" + root,
        "--map-local", "|//api.origin.test:\\d+/api/config|" + single])
    base = f"https://api.origin.test:{ngx.h2_port}"

    for h2 in (False, True):
        name = "HTTP/2" if h2 else "HTTP/1.1"
        step(f"{name}: a 300 KiB file from the directory, Content-Type from .js, SHA-256")
        rc, code, hdrs, body, ver, _ = ruleslib.curl(m, base + "/static/app.js?v=3", http2=h2)
        info(f"rc={rc} HTTP/{ver} {code} {len(body)} bytes {hdrs.get('content-type')}")
        check(rc == 0 and code == 200 and ver == ("2" if h2 else "1.1"), f"rc={rc} {ver} {code}")
        check(ruleslib.sha(body) == ruleslib.sha(big), f"{len(body)} bytes, SHA-256 differs")
        check(hdrs.get("content-type") == "text/javascript" and "x-origin" not in hdrs and
              hdrs.get("content-length") == str(len(big)), f"fields {hdrs}")

        step(f"{name}: Range bytes=100-199 -> 206 with those 100 bytes; bytes=999999- -> 416")
        rc, code, hdrs, body, _, _ = ruleslib.curl(m, base + "/static/app.js", http2=h2,
                                                   headers=["Range: bytes=100-199"])
        check(code == 206 and body == big[100:200] and
              hdrs.get("content-range") == f"bytes 100-199/{len(big)}", f"{code} {hdrs}")
        rc, code, hdrs, body, _, _ = ruleslib.curl(m, base + "/static/app.js", http2=h2,
                                                   headers=["Range: bytes=999999-"])
        check(code == 416 and hdrs.get("content-range") == f"bytes */{len(big)}",
              f"{code} {hdrs}")

        step(f"{name}: a directory answers its index.html; a missing file 404")
        rc, code, hdrs, body, _, _ = ruleslib.curl(m, base + "/static/docs/", http2=h2)
        check(code == 200 and body == b"<h1>docs</h1>\n" and
              hdrs.get("content-type") == "text/html", f"{code} {hdrs} {body!r}")
        rc, code, _, body, _, _ = ruleslib.curl(m, base + "/static/nope.css", http2=h2)
        check(code == 404, f"{code} {body[:100]!r}")

        step(f"{name}: ../ (encoded) and a symlink out of the directory are refused")
        rc, code, _, body, _, _ = ruleslib.curl(m, base + "/static/%2e%2e/secret.txt",
                                                http2=h2, extra=["--path-as-is"])
        check(code == 403 and b"outside the mapped" not in body, f"{code} {body[:100]!r}")
        rc, code, _, body, _, _ = ruleslib.curl(m, base + "/static/leak.txt", http2=h2)
        check(code == 403 and b"outside the mapped" not in body, f"{code} {body[:100]!r}")

        step(f"{name}: a file spec answers every matching URL with that file")
        rc, code, hdrs, body, _, _ = ruleslib.curl(m, base + "/api/config?x=1", http2=h2)
        check(code == 200 and body == b'{"mocked": true}\n' and
              hdrs.get("content-type") == "application/json", f"{code} {hdrs} {body!r}")

    step("an unmatched URL still reaches the origin")
    rc, code, hdrs, body, _, _ = ruleslib.curl(m, base + "/echo")
    check(code == 200 and hdrs.get("x-origin") == "echo", f"{code} {hdrs}")


if __name__ == "__main__":
    run(test, __doc__)
