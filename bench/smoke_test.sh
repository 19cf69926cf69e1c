#!/bin/sh
# bench/smoke_test.sh - end-to-end smoke test of mitmd-bench against a local nginx TLS origin
# (and, for the CONNECT path, a tiny Python CONNECT relay). Usage: smoke_test.sh MITMD_BENCH
# Starts every process itself, on free loopback ports, and stops each one by PID on exit.
# Exit 0 on success, 77 when nginx/openssl/python3 are missing, 1 on failure.
set -u

BENCH=${1:?usage: smoke_test.sh path/to/mitmd-bench}
for tool in nginx openssl python3; do
    command -v "$tool" >/dev/null 2>&1 || { echo "SKIP: $tool not installed"; exit 77; }
done

TMP=$(mktemp -d /tmp/mitmd-bench-smoke.XXXXXX) || exit 1
NGINX_PID=
PROXY_PID=
cleanup() {
    [ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null && wait "$PROXY_PID" 2>/dev/null
    [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
chmod 755 "$TMP" # nginx workers may run as an unprivileged user

fail() {
    echo "FAIL: $*"
    [ -f "$TMP/error.log" ] && tail -n 20 "$TMP/error.log"
    exit 1
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# --- a throwaway CA and a leaf for localhost and *.bench.test ---------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=mitmd-bench smoke CA" -keyout "$TMP/ca.key" -out "$TMP/ca.pem" 2>/dev/null ||
    fail "openssl: CA"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
    -keyout "$TMP/leaf.key" -out "$TMP/leaf.csr" 2>/dev/null || fail "openssl: CSR"
printf 'subjectAltName=DNS:localhost,DNS:*.bench.test\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
    >"$TMP/leaf.ext"
openssl x509 -req -in "$TMP/leaf.csr" -CA "$TMP/ca.pem" -CAkey "$TMP/ca.key" -CAcreateserial \
    -days 2 -extfile "$TMP/leaf.ext" -out "$TMP/leaf.pem" 2>/dev/null || fail "openssl: leaf"
chmod 644 "$TMP"/*.pem "$TMP"/*.key

# --- nginx origin ------------------------------------------------------------------------
mkdir -p "$TMP/www" && head -c 1024 /dev/zero | tr '\0' 'a' >"$TMP/www/1k"
chmod -R a+rX "$TMP/www"
PORT=$(free_port) || fail "no free port"
cat >"$TMP/nginx.conf" <<CONF
worker_processes 1;
pid $TMP/nginx.pid;
error_log $TMP/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $TMP/body;
    proxy_temp_path $TMP/proxy;
    fastcgi_temp_path $TMP/fastcgi;
    uwsgi_temp_path $TMP/uwsgi;
    scgi_temp_path $TMP/scgi;
    keepalive_requests 100000;
    server {
        listen 127.0.0.1:$PORT ssl http2;
        ssl_certificate $TMP/leaf.pem;
        ssl_certificate_key $TMP/leaf.key;
        root $TMP/www;
        location = /post { return 200 "ok\n"; }
    }
}
CONF
nginx -e "$TMP/error.log" -p "$TMP" -c "$TMP/nginx.conf" -g 'daemon off;' &
NGINX_PID=$!
i=0
until python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$PORT),0.2)" 2>/dev/null; do
    i=$((i + 1))
    [ $i -lt 50 ] || fail "nginx did not start"
    kill -0 "$NGINX_PID" 2>/dev/null || fail "nginx exited"
    sleep 0.1
done

# --- a minimal CONNECT relay: every CONNECT goes to 127.0.0.1:<port of the target> ---------
cat >"$TMP/connect_proxy.py" <<'PY'
import select, socket, sys, threading
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 0))
ls.listen(256)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(ls.getsockname()[1]))
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
def serve(c):
    head = b""
    while b"\r\n\r\n" not in head:
        d = c.recv(4096)
        if not d:
            c.close(); return
        head += d
    parts = head.split(b"\r\n", 1)[0].split()
    if len(parts) != 3 or parts[0] != b"CONNECT":
        c.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n"); c.close(); return
    port = int(parts[1].rsplit(b":", 1)[1])
    try:
        u = socket.create_connection(("127.0.0.1", port))
    except OSError:
        c.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n"); c.close(); return
    c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
    socks = [c, u]
    try:
        while True:
            r, _, _ = select.select(socks, [], [])
            for s in r:
                d = s.recv(65536)
                if not d:
                    return
                (u if s is c else c).sendall(d)
    except OSError:
        pass
    finally:
        c.close(); u.close()
while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
python3 "$TMP/connect_proxy.py" "$TMP/proxy.port" &
PROXY_PID=$!
i=0
until [ -s "$TMP/proxy.port" ]; do
    i=$((i + 1))
    [ $i -lt 50 ] || fail "CONNECT relay did not start"
    sleep 0.1
done
PROXY_PORT=$(cat "$TMP/proxy.port")

# check NAME EXPECT_RC PYTHON_ASSERTION ARGS... runs mitmd-bench, checks its exit status,
# that stdout's last line and the --json file are the same valid JSON, and the assertion
# (over the parsed summary `d`).
check() {
    name=$1 expect_rc=$2 cond=$3
    shift 3
    "$BENCH" --connect "127.0.0.1:$PORT" --cafile "$TMP/ca.pem" --json "$TMP/$name.json" \
        "$@" >"$TMP/$name.out" 2>&1
    rc=$?
    [ "$rc" -eq "$expect_rc" ] || { cat "$TMP/$name.out"; fail "$name: exit $rc, expected $expect_rc"; }
    tail -n 1 "$TMP/$name.out" >"$TMP/$name.line"
    python3 - "$TMP/$name.json" "$TMP/$name.line" "$cond" <<'PY' || { cat "$TMP/$name.out"; fail "$name: $cond"; }
import json, sys
d = json.load(open(sys.argv[1]))
assert d == json.load(open(sys.argv[2])), "stdout summary differs from --json file"
for k in ("mode", "proxy", "connections", "duration_s", "requests", "errors", "rps",
          "handshakes_per_s", "latency_us", "first_error"):
    assert k in d, "missing field " + k
for k in ("p50", "p90", "p99", "max"):
    assert k in d["latency_us"], "missing latency_us." + k
assert eval(sys.argv[3], {}, {"d": d}), "condition failed: %s in %s" % (sys.argv[3], d)
PY
    echo "ok: $name: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["requests"], "requests,", d["errors"], "errors,", d["rps"], "req/s")' "$TMP/$name.json")"
}

OK='d["requests"] > 0 and d["errors"] == 0 and d["first_error"] is None'
check keepalive 0 "$OK and d['mode'] == 'keepalive' and d['handshakes'] <= 4" \
    --host localhost --path /1k -c 4 -t 2 -d 1s
check warmup_count 0 "$OK and d['requests'] == 500" \
    --host localhost --path /1k -c 4 -n 500 --warmup 200ms
check newconn_resume 0 "$OK and d['resumed'] > 0 and d['handshakes'] >= d['requests']" \
    --host localhost --path /1k -c 4 -d 1s --new-conn --resume
check hosts_proxy 0 "$OK and d['mode'] == 'hosts' and d['proxy'] is not None" \
    --proxy "127.0.0.1:$PROXY_PORT" --host 'h%d.bench.test' --hosts 50 --path /1k -c 4 -d 1s
check post 0 "$OK and d['bytes_per_s'] > 0" \
    --host localhost --path /post --body-size 20000 -c 2 -d 500ms
check rate 0 "$OK and 80 <= d['requests'] <= 120" \
    --host localhost --path /1k -c 4 -d 1s --rate 100
check h2 0 "$OK and d['protocol'] == 'h2' and d['streams'] == 8 and d['handshakes'] <= 2" \
    --host localhost --path /1k -c 2 -m 8 -d 1s --h2
check h2_count_proxy 0 "$OK and d['requests'] == 300 and d['proxy'] is not None" \
    --proxy "127.0.0.1:$PROXY_PORT" --host localhost --path /1k -c 3 -m 5 -n 300 --h2
check h2_post_newconn 0 "$OK and d['handshakes'] >= d['requests']" \
    --host localhost --path /post --body-size 1000 -c 2 -d 500ms --h2 --new-conn
check status_404 1 "d['requests'] == 0 and d['errors'] > 0 and 'status 404' in d['first_error']" \
    --host localhost --path /missing -c 2 -d 300ms
check wrong_name 1 "d['errors'] > 0 and d['errors_by_kind']['tls'] == d['errors']" \
    --host other.example -c 2 -d 300ms
check h2_status_404 1 "d['requests'] == 0 and d['errors'] > 0 and 'status 404' in d['first_error']" \
    --host localhost --path /missing -c 1 -m 4 -d 300ms --h2

"$BENCH" --connect "127.0.0.1:$PORT" --no-such-option >/dev/null 2>&1
[ $? -eq 2 ] || fail "unknown option must exit 2"
echo "PASS"
