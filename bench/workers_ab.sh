#!/usr/bin/env bash
# bench/workers_ab.sh - CPU per request of mitmd with 2 workers against 1 worker at the SAME
# offered load (not part of bench/suite; a one-off measurement for issue 14's "2 workers vs
# 1" row). The suite's own 2-worker/1-worker rows are closed-loop: each proxy runs as fast as
# it can with the load generator and the origin on the same 2 cores, so the 1-worker proxy
# batches more completions per wake-up than either of 2 workers, and the ratio measures load
# level as much as scaling. Here both instances get the same open-loop rate (mitmd-bench
# --rate R, R = RATE_FRACTION x the 1-worker instance's closed-loop req/s measured first), so
# the ratio is the cost of a second worker at equal work.
# Rows: keep-alive HTTP/1.1 1 KiB, HTTP/2 1 KiB (10 streams per connection), keep-alive
# HTTP/1.1 100 KiB, one request per connection (full handshakes both sides: the client never
# resumes; mitmd resumes its upstream sessions as it always does). Rounds alternate the two
# instances; each figure is the median of the rounds.
# CPU is utime+stime of the measured mitmd (master and workers) from /proc over the run.
# Usage: bench/workers_ab.sh [BUILD_DIR] (default build/); env ROUNDS (3), DUR (5s),
# RATE_FRACTION (0.5), ROWS ("h1-1k h2-1k h1-100k newconn").
# Loopback only; every process started is stopped by PID at exit.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$REPO/build}
ROUNDS=${ROUNDS:-3}
DUR=${DUR:-5s}
RATE_FRACTION=${RATE_FRACTION:-0.5}
ROWS=${ROWS:-"h1-1k h2-1k h1-100k newconn"}
MITMD=$BUILD/mitmd
BENCH=$BUILD/mitmd-bench
PY=/usr/bin/python3
TMP=$(mktemp -d /tmp/workers-ab.XXXXXX)
chmod 755 "$TMP" # nginx workers (nobody) read the origin files below it
PIDS=()

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  "$REPO/bench/origin" --stop --dir "$TMP/origin" >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT

free_port() {
  $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

mkdir -p "$TMP/origin"
"$REPO/bench/origin" --dir "$TMP/origin" --background >"$TMP/origin.txt"
OPORT=$(awk '/^origin/{split($2,a,":"); print a[2]}' "$TMP/origin.txt")
OCA=$TMP/origin/origin-ca.pem

# start_mitmd N: a mitmd with N workers; sets MPORT_N, MPID_N
start_mitmd() {
  local n=$1 port
  port=$(free_port)
  mkdir -p "$TMP/conf$n"
  "$MITMD" --confdir "$TMP/conf$n" -p "$port" --workers "$n" --upstream-ca "$OCA" \
    --resolve '*.bench.test=127.0.0.1' -q >"$TMP/mitmd$n.log" 2>&1 &
  PIDS+=($!)
  eval "MPID_$n=$!; MPORT_$n=$port"
  for _ in $(seq 50); do
    if $PY -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "mitmd ($n workers) did not start: $(cat "$TMP/mitmd$n.log")" >&2
  exit 1
}

# cpu_ticks PID: utime+stime of PID and its children (the workers), clock ticks
cpu_ticks() {
  local t=0 p
  for p in "$1" $(pgrep -P "$1" || true); do
    set -- $(cut -d' ' -f14,15 "/proc/$p/stat" 2>/dev/null || echo "0 0")
    t=$((t + $1 + $2))
  done
  echo $t
}

row_args() {
  case $1 in
    h1-1k) echo "-c 32 --path /1k" ;;
    h2-1k) echo "-c 8 --h2 -m 10 --path /1k" ;;
    h1-100k) echo "-c 16 --path /100k" ;;
    newconn) echo "-c 16 --new-conn --path /1k" ;;
    *) echo "unknown row $1" >&2; exit 2 ;;
  esac
}

# drive N ARGS...: one mitmd-bench run through the N-worker mitmd; prints "REQS TICKS"
drive() {
  local n=$1 pid port c0 c1 reqs
  shift
  eval "pid=\$MPID_$n; port=\$MPORT_$n"
  c0=$(cpu_ticks "$pid")
  "$BENCH" --connect "127.0.0.1:$OPORT" --host www.bench.test --proxy "127.0.0.1:$port" \
    --cafile "$TMP/conf$n/mitmd-ca-cert.pem" --json "$TMP/run.json" "$@" >"$TMP/bench.out" 2>&1 || true
  c1=$(cpu_ticks "$pid")
  [ -n "${WAB_DEBUG:-}" ] && tail -3 "$TMP/bench.out" >&2
  reqs=$($PY -c "import json; d=json.load(open('$TMP/run.json')); print(d['requests'] - d['errors'])")
  echo "$reqs $((c1 - c0))"
}

start_mitmd 1
start_mitmd 2
TICK=$(getconf CLK_TCK)
echo "# mitmd CPU per request, 2 workers / 1 worker at the same offered load"
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo ?), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# rate = $RATE_FRACTION x the 1-worker closed-loop req/s; $ROUNDS rounds of $DUR per instance, alternating"
echo
echo "| row | rate req/s | 1 worker us/req | 2 workers us/req | 2w / 1w | rounds (2w/1w) |"
echo "|---|---:|---:|---:|---:|---|"
for row in $ROWS; do
  args=$(row_args "$row")
  # warm both (connections, certificate cache), then the 1-worker closed-loop rate
  drive 1 $args -d 1s >/dev/null
  drive 2 $args -d 1s >/dev/null
  read -r reqs _ < <(drive 1 $args -d 3s)
  rate=$($PY -c "print(max(100, int($reqs / 3 * $RATE_FRACTION)))")
  r1=() r2=() ratios=()
  for i in $(seq "$ROUNDS"); do
    if [ $((i % 2)) = 1 ]; then order="1 2"; else order="2 1"; fi
    for n in $order; do
      read -r reqs ticks < <(drive "$n" $args -d "$DUR" --rate "$rate")
      us=$($PY -c "print(f'{$ticks * 1e6 / $TICK / max($reqs, 1):.1f}')")
      if [ "$n" = 1 ]; then r1+=("$us"); else r2+=("$us"); fi
    done
    ratios+=("$($PY -c "print(f'{${r2[-1]} / max(${r1[-1]}, 0.001):.2f}')")")
  done
  $PY - "$row" "$rate" "${r1[*]}" "${r2[*]}" "${ratios[*]}" <<'EOF'
import statistics, sys
row, rate, a, b, rs = sys.argv[1:]
a = [float(x) for x in a.split()]
b = [float(x) for x in b.split()]
m1, m2 = statistics.median(a), statistics.median(b)
print(f"| {row} | {int(rate):,} | {m1:.1f} | {m2:.1f} | {m2 / m1:.2f}x | {rs} |")
EOF
done
