#!/usr/bin/env python3
"""A real HAProxy in TCP mode in front of mitmd (--set proxy_protocol=true): one frontend
whose server line says `send-proxy-v2 check check-send-proxy`, one `send-proxy check`. Clients
bound to 127.0.0.5 and 127.0.0.6 do CONNECT + TLS GETs through HAProxy; HAProxy's health checks
keep both servers UP; mitmd's flow lines and -w records name 127.0.0.5:<the client's own port>
(not HAProxy's 127.0.0.1 socket), and neither the exchanges nor the checks count as client
errors. Skipped (77) when haproxy is not installed (Debian package haproxy)."""
import os
import re
import shutil
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (_pdeathsig, check, free_ports, info, run, standard_setup,  # noqa: E402
                     step, stop_popen, TestFailure, wait_stat, wait_until)
from pplib import connect_exchange, read_records  # noqa: E402

HAPROXY = shutil.which("haproxy")


def haproxy_stat(sock_path):
    """haproxy_stat returns {(proxy, server): (status, check_status)} from `show stat`."""
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(2)
        s.connect(sock_path)
        s.sendall(b"show stat\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
    except OSError:
        return {}
    lines = data.decode().splitlines()
    if not lines or not lines[0].startswith("# "):
        return {}
    cols = lines[0][2:].split(",")
    out = {}
    for ln in lines[1:]:
        f = dict(zip(cols, ln.split(",")))
        if f.get("svname") not in ("FRONTEND", "BACKEND", None):
            out[(f["pxname"], f["svname"])] = (f.get("status"), f.get("check_status"))
    return out


def test(env):
    body = os.urandom(1024)
    w = standard_setup(env, flows=True, files={"1k": body}, origin=False,
                       extra_args=["--set", "proxy_protocol=true"])
    port = w.nginx.ports["valid"]
    host = "www.origin.test"
    fe_v2, fe_v1 = free_ports(2)
    stat_sock = env.path("haproxy.sock")
    cfg = env.path("haproxy.cfg")
    with open(cfg, "w") as f:
        f.write(f"""global
    stats socket {stat_sock} mode 600 level admin
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend fe_v2
    bind 127.0.0.1:{fe_v2}
    default_backend be_v2
frontend fe_v1
    bind 127.0.0.1:{fe_v1}
    default_backend be_v1
backend be_v2
    server mitmd 127.0.0.1:{w.mitmd.port} send-proxy-v2 check check-send-proxy inter 300 rise 1 fall 1
backend be_v1
    server mitmd 127.0.0.1:{w.mitmd.port} send-proxy check inter 300 rise 1 fall 1
""")
    log = env.path("haproxy.log")
    env.add_log("haproxy output", log)
    cp = subprocess.run([HAPROXY, "-c", "-f", cfg], capture_output=True, text=True)
    check(cp.returncode == 0, f"haproxy -c refuses the config: {cp.stdout} {cp.stderr}")
    with open(log, "ab") as out:
        proc = subprocess.Popen([HAPROXY, "-db", "-f", cfg], stdout=out, stderr=out,
                                stdin=subprocess.DEVNULL, preexec_fn=_pdeathsig)
    env.stack.callback(stop_popen, proc, 5.0)
    info(f"haproxy pid {proc.pid}: :{fe_v2} -> send-proxy-v2, :{fe_v1} -> send-proxy")

    step("HAProxy's health checks (with PROXY headers) find mitmd UP in both backends")

    def both_up():
        st = haproxy_stat(stat_sock)
        v2, v1 = st.get(("be_v2", "mitmd")), st.get(("be_v1", "mitmd"))
        ok = v2 and v1 and v2[0] == "UP" and v1[0] == "UP" and \
            v2[1].startswith("L4OK") and v1[1].startswith("L4OK")
        return st if ok else None

    st = wait_until(both_up, 10, interval=0.2)
    if st is None:
        raise TestFailure(f"HAProxy does not see mitmd UP with checks: {haproxy_stat(stat_sock)}")
    info(f"haproxy: {st}")

    exchanges = []
    for fe, src, ver in ((fe_v2, "127.0.0.5", "v2"), (fe_v1, "127.0.0.6", "v1"),
                         (fe_v2, "127.0.0.5", "v2")):
        step(f"a client at {src} -> HAProxy :{fe} ({ver}) -> mitmd: CONNECT + TLS GET /1k")
        status, got, local = connect_exchange(fe, b"", host, port, w.mitmd.ca_cert,
                                              source=src)
        check(status == 200 and got == body, f"GET /1k via HAProxy: {status}")
        exchanges.append(local)

    url = re.escape(f"https://{host}:{port}/1k")
    for addr, cport in exchanges:
        step(f"the console flow line names the client {addr}:{cport}")
        pat = re.compile(r"^" + re.escape(f"{addr}:{cport}") + r": GET " + url +
                         r" HTTP/1\.1 << 200 ", re.M)
        m = wait_until(lambda: pat.search(w.mitmd.stdout()), 5)
        check(m, f"no flow line matching {pat.pattern!r}:\n{w.mitmd.stdout()}")
        info(m.group(0))

    step("after more health checks: no client errors, no error flows")
    wait_until(lambda: False, 1.0)  # ~3 more checks per backend
    stats = wait_stat(w.mitmd, "flows", len(exchanges))
    check(stats.get("client_errors") == 0, f"client_errors={stats.get('client_errors')}")
    check(haproxy_stat(stat_sock).get(("be_v2", "mitmd"), ("?",))[0] == "UP",
          "the v2 backend went down")
    stop_popen(proc)
    w.mitmd.stop()
    recs = read_records(w.flows)
    got = sorted((r["client"]["address"], r["client"]["port"]) for r in recs)
    check(got == sorted(exchanges), f"-w records name clients {got}, expected "
          f"{sorted(exchanges)} (and no record for a health check)")


if __name__ == "__main__":
    if HAPROXY is None:
        print("SKIP: haproxy is not installed (apt-get install haproxy)")
        sys.exit(77)
    run(test, __doc__)
