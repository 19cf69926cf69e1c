#!/usr/bin/env python3
"""Server replay over HTTP/2 holds each request body whole before it decides (the key has
the body's SHA-256), at most H2_BODIES_MAX (8) bodies per connection. A ninth request with
an unfinished body on the same connection must not go to the live server unkeyed (it did:
server_replay_extra was bypassed); it is refused with RST_STREAM REFUSED_STREAM, which
tells the client nothing was processed and it may retry (RFC 9113 §8.7).

A raw HTTP/2 client (CONNECT, TLS, ALPN h2, hand-made frames) opens nine POST streams, each
with a few body bytes and no END_STREAM: the first eight get nothing yet (held), the ninth
gets RST_STREAM REFUSED_STREAM and no HEADERS; after the first stream's body ends it is
answered by server_replay_extra (418), not by nginx."""
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "h2"))
from harness import check, curl, info, run, standard_setup, step  # noqa: E402
import h2lib  # noqa: E402

FRAME_DATA, FRAME_HEADERS, FRAME_RST = 0, 1, 3
END_STREAM, END_HEADERS = 0x1, 0x4


def hpack_post(authority, path):
    """:method POST (static index 3), :scheme https (7), :path and :authority literals."""
    def lit(index, value):
        v = value.encode()
        return bytes([index, len(v)]) + v
    return b"\x83\x87" + lit(4, path) + lit(1, authority)


def test(env):
    step("record one exchange, then replay with server_replay_extra=418")
    rec = standard_setup(env, workers=1, flows=True, origin=False)
    url = f"https://www.origin.test:{rec.nginx.h2_port}/1k"
    code, _, err = curl(env, rec.mitmd.port, url, cafile=rec.mitmd.ca_cert, extra=["--http2"])
    check(code == 200, f"record: {code} {err}")
    rec.mitmd.stop()
    m = env.mitmd(args=["--upstream-ca", rec.pki.ca_cert, "--resolve", "*.origin.test=127.0.0.1",
                        "-S", rec.flows, "--keepserving", "--set", "server_replay_extra=418"],
                  name="replay")
    port = rec.nginx.h2_port

    step("nine POST streams on one connection, each with 5 body bytes and no END_STREAM")
    sock = h2lib.h2_raw_connect(m, "www.origin.test", port)
    out = h2lib.PREFACE + h2lib.frame(h2lib.FRAME_SETTINGS, 0, 0)
    ids = [1 + 2 * i for i in range(9)]
    for sid in ids:
        out += h2lib.frame(FRAME_HEADERS, END_HEADERS, sid,
                           hpack_post(f"www.origin.test:{port}", "/upload"))
        out += h2lib.frame(FRAME_DATA, 0, sid, b"hello")
    sock.sendall(out)
    r = h2lib.FrameReader(sock)
    got = {}
    while True:
        f = r.next(2.0)
        if f is None:
            break
        ftype, _, sid, payload = f
        if ftype in (FRAME_HEADERS, FRAME_RST) and sid in ids:
            code = struct.unpack(">I", payload[:4])[0] if ftype == FRAME_RST else None
            got.setdefault(sid, []).append(("RST", code) if ftype == FRAME_RST else ("HEADERS",))
    info(f"answers within 2 s: {got}")
    check(got.get(ids[8]) == [("RST", 7)],
          f"the ninth stream got {got.get(ids[8])}, expected RST_STREAM REFUSED_STREAM (7)")
    check(all(sid not in got for sid in ids[:8]), f"a held stream was answered early: {got}")

    step("the first stream's body ends: server_replay_extra answers it (418), not nginx")
    sock.sendall(h2lib.frame(FRAME_DATA, END_STREAM, ids[0], b""))
    status = None
    while status is None:
        f = r.next(5.0)
        check(f is not None, "no answer to the first stream")
        if f[0] == FRAME_HEADERS and f[2] == ids[0]:
            # :status as an indexed (0x88 = 200...) or literal field; 418 is a literal
            status = 418 if b"418" in f[3] else f[3][:4]
    check(status == 418, f"first stream answered {status!r}, expected 418")
    sock.close()


if __name__ == "__main__":
    run(test, __doc__)
