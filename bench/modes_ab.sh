#!/usr/bin/env bash
# bench/modes_ab.sh - a one-off measurement of mitmd's CPU per request by proxy mode (not part
# of bench/suite): mitmd-bench keep-alive HTTP/1.1, 1 KiB responses from an nginx TLS origin,
# through one mitmd worker in regular mode (CONNECT), upstream mode (CONNECT through a next
# hop: a second mitmd that tunnels everything, --ignore-hosts '.*', whose CPU is not counted)
# reverse mode (mitmd-bench speaks TLS to mitmd directly), socks5 mode (mitmd-bench's
# --proxy socks5h://) and, as root with ip and nft, transparent mode: the whole run then
# happens inside a network namespace of its own (loopback only), where an nftables output
# rule redirects root's connections to the origin's port to mitmd (its workers run as
# nobody, so their own connections to the origin are not redirected) and mitmd reads the
# original destination with SO_ORIGINAL_DST. Rounds alternate the modes; each row is the
# median of the rounds.
# CPU is utime+stime of the measured mitmd (master and workers) from /proc over the run.
# Usage: bench/modes_ab.sh [BUILD_DIR] (default build/); env ROUNDS (3), DUR (5s), CONNS (10).
# Loopback only; every process started is stopped by PID at exit.
set -euo pipefail

# transparent mode needs a namespace of its own: re-run this script inside a fresh one
if [ -z "${MODES_AB_NETNS:-}" ] && [ "$(id -u)" = 0 ] && command -v ip >/dev/null &&
   command -v nft >/dev/null; then
  ns=modes-ab-$$
  ip netns add "$ns"
  rc=0
  ip netns exec "$ns" ip link set lo up &&
    ip netns exec "$ns" env MODES_AB_NETNS="$ns" "$0" "$@" || rc=$?
  ip netns del "$ns"
  exit $rc
fi

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$REPO/build}
ROUNDS=${ROUNDS:-3}
DUR=${DUR:-5s}
CONNS=${CONNS:-10}
MITMD=$BUILD/mitmd
BENCH=$BUILD/mitmd-bench
TMP=$(mktemp -d /tmp/modes-ab.XXXXXX)
PIDS=()

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# --- PKI and origin ------------------------------------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=modes-ab-ca \
  -keyout "$TMP/ca.key" -out "$TMP/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=www.origin.test \
  -keyout "$TMP/leaf.key" -out "$TMP/leaf.csr" 2>/dev/null
printf 'subjectAltName=DNS:www.origin.test,IP:127.0.0.1\n' >"$TMP/ext"
openssl x509 -req -in "$TMP/leaf.csr" -CA "$TMP/ca.pem" -CAkey "$TMP/ca.key" -CAcreateserial \
  -days 2 -extfile "$TMP/ext" -out "$TMP/leaf.pem" 2>/dev/null
mkdir -p "$TMP/www" "$TMP/ngx"
head -c 1024 /dev/urandom >"$TMP/www/1k"
ORIG=$(free_port)
cat >"$TMP/ngx/nginx.conf" <<EOF
daemon off; master_process off; worker_processes 1; pid $TMP/ngx/nginx.pid;
error_log $TMP/ngx/error.log warn;
$( [ "$(id -u)" = 0 ] && echo "user root root;" )
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000; client_body_temp_path $TMP/ngx;
  proxy_temp_path $TMP/ngx; fastcgi_temp_path $TMP/ngx; uwsgi_temp_path $TMP/ngx;
  scgi_temp_path $TMP/ngx;
  server { listen 127.0.0.1:$ORIG ssl; ssl_certificate $TMP/leaf.pem;
           ssl_certificate_key $TMP/leaf.key; root $TMP/www; } }
EOF
/usr/sbin/nginx -p "$TMP/ngx" -c "$TMP/ngx/nginx.conf" &
PIDS+=($!)

# --- the mitmds -----------------------------------------------------------------------------
COMMON=(--workers 1 -q --upstream-ca "$TMP/ca.pem" --resolve '*.origin.test=127.0.0.1')
start_mitmd() { # NAME ARGS... ; sets PORT_<NAME> and PID_<NAME>
  local name=$1; shift
  "$MITMD" --confdir "$TMP/conf" -p 0 "$@" 2>"$TMP/$name.err" >/dev/null &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 1 100); do
    grep -q 'listening on' "$TMP/$name.err" 2>/dev/null && break
    sleep 0.1
  done
  local port
  port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\) with.*/\1/p' "$TMP/$name.err")
  [ -n "$port" ] || { echo "mitmd $name did not start:"; cat "$TMP/$name.err"; exit 1; }
  printf -v "PORT_$name" %s "$port"
  printf -v "PID_$name" %s "$pid"
}
start_mitmd regular "${COMMON[@]}" --mode regular
start_mitmd hop --workers 1 -q --ignore-hosts '.*' --resolve '*.origin.test=127.0.0.1' --mode regular
start_mitmd upstream "${COMMON[@]}" --mode "upstream:http://127.0.0.1:$PORT_hop"
start_mitmd reverse "${COMMON[@]}" --mode "reverse:https://www.origin.test:$ORIG"
start_mitmd socks5 "${COMMON[@]}" --mode socks5
MODES=(regular upstream reverse socks5)
if [ -n "${MODES_AB_NETNS:-}" ]; then
  start_mitmd transparent "${COMMON[@]}" --mode transparent
  nft add table ip modes_ab
  nft add chain ip modes_ab out '{ type nat hook output priority -100; }'
  nft add rule ip modes_ab out meta skuid 0 ip daddr 127.0.0.1 tcp dport "$ORIG" \
    redirect to :"$PORT_transparent"
  MODES+=(transparent)
fi
MCA=$TMP/conf/mitmd-ca-cert.pem

cpu_ticks() { # PID: utime+stime of the process and its children processes (workers)
  local total=0 p
  for p in "$1" $(pgrep -P "$1" || true); do
    [ -r "/proc/$p/stat" ] || continue
    total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$total"
}

run_mode() { # MODE -> prints "requests ticks"
  local mode=$1 args pid
  case $mode in
    regular) args=(--connect "127.0.0.1:$ORIG" --host www.origin.test --proxy "127.0.0.1:$PORT_regular") ;;
    upstream) args=(--connect "127.0.0.1:$ORIG" --host www.origin.test --proxy "127.0.0.1:$PORT_upstream") ;;
    reverse) args=(--connect "127.0.0.1:$PORT_reverse" --host www.origin.test) ;;
    socks5) args=(--connect "127.0.0.1:$ORIG" --host www.origin.test --proxy "socks5h://127.0.0.1:$PORT_socks5") ;;
    transparent) args=(--connect "127.0.0.1:$ORIG" --host www.origin.test) ;; # redirected
  esac
  pid=$(eval echo "\$PID_$mode")
  local t0 t1
  # a short unmeasured run first: certificates forged, connections and sessions warm
  "$BENCH" "${args[@]}" --cafile "$MCA" --path /1k -c "$CONNS" -t 1 -d 1s >/dev/null 2>&1 || true
  t0=$(cpu_ticks "$pid")
  "$BENCH" "${args[@]}" --cafile "$MCA" --path /1k -c "$CONNS" -t 1 -d "$DUR" \
    --json "$TMP/$mode.json" >/dev/null 2>"$TMP/$mode.bench.err" || true
  t1=$(cpu_ticks "$pid")
  python3 - "$TMP/$mode.json" "$((t1 - t0))" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
ok = j["requests"] - j.get("errors", 0)
print(ok, sys.argv[2], j.get("errors", 0))
EOF
}

HZ=$(getconf CLK_TCK)
declare -A RES
for r in $(seq 1 "$ROUNDS"); do
  for mode in "${MODES[@]}"; do
    RES[$mode]+="$(run_mode "$mode");"
  done
done

echo "mitmd CPU per request by mode: keep-alive HTTP/1.1, 1 KiB, $CONNS connections, $DUR x $ROUNDS rounds, 1 worker"
args=()
for mode in "${MODES[@]}"; do args+=("$mode=${RES[$mode]}"); done
python3 - "$HZ" "${args[@]}" <<'EOF'
import statistics, sys
hz = int(sys.argv[1])
rows = {}
for arg in sys.argv[2:]:
    name, raw = arg.split("=", 1)
    vals = []
    for cell in filter(None, raw.split(";")):
        n, ticks, errs = (int(float(x)) for x in cell.split())
        if n > 0:
            vals.append((ticks / hz * 1e6 / n, n, errs))
    rows[name] = vals
base = statistics.median(v[0] for v in rows["regular"])
print(f"{'mode':10} {'req/round':>10} {'errors':>7} {'CPU us/req':>11} {'vs regular':>11}"
      "   rounds (us/req)")
for name, vals in rows.items():
    us = statistics.median(v[0] for v in vals)
    n = statistics.median(v[1] for v in vals)
    e = sum(v[2] for v in vals)
    each = " ".join(f"{v[0]:.1f}" for v in vals)
    print(f"{name:10} {n:>10.0f} {e:>7} {us:>11.2f} {us / base:>10.2f}x   {each}")
EOF
