#!/usr/bin/env python3
"""Malformed HTTP/2 from a client ends that connection with a GOAWAY carrying the right error
code, and is counted: a bad preface, invalid frames (DATA on stream 0, HEADERS on an even
stream), a SETTINGS flood, a PING flood and RST_STREAM rapid reset. Meanwhile a normal h2
client on another connection to the same worker completes its slow streams intact, and the
worker never restarts."""
import json
import os
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h2lib  # noqa: E402
from h2lib import (ERR_NAMES, FLAG_ACK, FLAG_END_HEADERS, FLAG_END_STREAM, FRAME_DATA,  # noqa
                   FRAME_HEADERS, FRAME_PING, FRAME_RST_STREAM, FRAME_SETTINGS, PREFACE, frame)
from harness import (TestFailure, check, info, run, sha256_bytes, standard_setup,  # noqa: E402
                     step)

PROTOCOL_ERROR, ENHANCE_YOUR_CALM = 1, 11
FLOOD = 3000  # frames per flood; mitmd allows a burst of 1000 (H2_CTRL_BURST)
HOST = "www.origin.test"


def settings():
    return frame(FRAME_SETTINGS, 0, 0)


def bad_preface():
    return b"PRI * HTTP/1.1\r\n\r\nXX\r\n\r\n" + settings()


def data_on_stream_0():
    return PREFACE + settings() + frame(FRAME_DATA, 0, 0, b"hello")  # RFC 9113 §6.1


def headers_on_even_stream():
    block = h2lib.hpack_get(HOST)  # RFC 9113 §5.1.1: clients use odd stream ids
    return PREFACE + settings() + frame(FRAME_HEADERS, FLAG_END_HEADERS | FLAG_END_STREAM, 2,
                                        block)


def settings_flood():
    return PREFACE + settings() * FLOOD


def ping_flood():
    return PREFACE + settings() + b"".join(
        frame(FRAME_PING, 0, 0, struct.pack(">Q", i)) for i in range(FLOOD))


def rapid_reset():
    block = h2lib.hpack_get(HOST, "/p0")
    out = [PREFACE, settings()]
    for i in range(FLOOD):
        sid = 2 * i + 1
        out.append(frame(FRAME_HEADERS, FLAG_END_HEADERS | FLAG_END_STREAM, sid, block))
        out.append(frame(FRAME_RST_STREAM, 0, sid, struct.pack(">I", 8)))  # CANCEL
    return b"".join(out)


CASES = [
    # (name, bytes to send, expected GOAWAY error code, is a flood)
    ("bad preface", bad_preface, PROTOCOL_ERROR, False),
    ("DATA on stream 0", data_on_stream_0, PROTOCOL_ERROR, False),
    ("HEADERS on an even stream id", headers_on_even_stream, PROTOCOL_ERROR, False),
    ("SETTINGS flood", settings_flood, ENHANCE_YOUR_CALM, True),
    ("PING flood", ping_flood, ENHANCE_YOUR_CALM, True),
    ("RST_STREAM rapid reset", rapid_reset, ENHANCE_YOUR_CALM, True),
]


def test(env):
    files = {"p0": os.urandom(1000)}
    w = standard_setup(env, files=files, origin=False, workers=1)
    m = w.mitmd
    org = h2lib.h2_origin(env, w.pki)
    workers = m.wait_workers(1)
    check(workers, "mitmd did not start its worker")
    base = h2lib.mitmd_stats(m)

    step("a normal h2 client on another connection runs 5 slow streams during the attacks")
    chunks = 80  # 4 s
    bystander = subprocess.Popen(
        [h2lib.H2PEER, "client", "--proxy", f"127.0.0.1:{m.port}", "--connect",
         f"{HOST}:{org.port}", "--ca", m.ca_cert, "-n", "5", "--path", f"/drip/{chunks}",
         "--timeout", "15"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    env.stack.callback(lambda: bystander.poll() is None and bystander.kill())
    time.sleep(0.3)

    floods = 0
    for name, make, want, is_flood in CASES:
        step(f"{name}: mitmd answers GOAWAY({ERR_NAMES[want]}) and closes the connection")
        sock = h2lib.h2_raw_connect(m, HOST, w.nginx.h2_port)
        h2lib.send_all(sock, make())
        goaway, counts, closed = h2lib.read_until_goaway(sock, timeout=8)
        sock.close()
        info(f"{name}: GOAWAY {goaway}, frames seen {counts}, closed after: {closed}")
        check(goaway is not None, f"{name}: no GOAWAY from mitmd (frames {counts}, "
              f"closed {closed})")
        check(goaway[1] == want, f"{name}: GOAWAY error {ERR_NAMES.get(goaway[1], goaway[1])}, "
              f"expected {ERR_NAMES[want]}")
        check(closed, f"{name}: mitmd kept the connection open after its GOAWAY")
        floods += is_flood

    step("the bystander's streams all completed intact on their own connection")
    try:
        out, err = bystander.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        raise TestFailure("the bystander client hung")
    try:
        res = json.loads(out)
    except ValueError:
        raise TestFailure(f"bystander failed: rc {bystander.returncode} {out!r} {err!r}")
    want_sha = sha256_bytes(h2lib.pattern_bytes(chunks * 1000))
    bad = [s for s in res["streams"] if s["status"] != 200 or s["sha256"] != want_sha]
    check(not res["timed_out"] and not bad and res["goaway"] is None,
          f"bystander affected: goaway {res['goaway']}, failed streams {bad}")

    step("the worker never restarted")
    check(m.worker_pids() == workers, f"worker pids {workers} -> {m.worker_pids()}")

    step("the master's stats count each of them as a client error")
    n = len(CASES)
    st = h2lib.wait_stat(m, "client_errors", base.get("client_errors", 0) + n)
    grew = st.get("client_errors", 0) - base.get("client_errors", 0)
    info(f"stats: client_errors +{grew}; h2_client_errors {st.get('h2_client_errors')}, "
         f"h2_floods {st.get('h2_floods')} (checked by h2/h2_errors_in_stats)")
    check(grew >= n, f"client_errors grew by {grew}, expected at least {n}")

if __name__ == "__main__":
    h2lib.take_h2peer_arg()
    run(test, __doc__)
