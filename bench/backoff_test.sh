#!/bin/sh
# bench/backoff_test.sh - mitmd-bench against a port where nothing listens (127.0.0.1:1) must
# back off and give up: exit non-zero within a few seconds, one line on stderr naming the
# cause, and only a handful of connection attempts (not tens of thousands). Checks both the
# proxy and the direct path. Usage: backoff_test.sh MITMD_BENCH. Starts no server.
set -u

BENCH=${1:?usage: backoff_test.sh path/to/mitmd-bench}
command -v python3 >/dev/null 2>&1 || { echo "SKIP: python3 not installed"; exit 77; }
TMP=$(mktemp -d /tmp/mitmd-bench-backoff.XXXXXX) || exit 1
trap 'rm -rf "$TMP"' EXIT

CONNS=4
THREADS=2
MAX_ATTEMPTS=$((CONNS + THREADS * 8)) # the first batch, then one probe per round per thread

check() { # check NAME ARGS...: run mitmd-bench with ARGS and judge how it gave up
    name=$1
    shift
    start=$(date +%s%N)
    timeout 30 "$BENCH" "$@" -c "$CONNS" -t "$THREADS" -d 60s --json "$TMP/$name.json" \
        >"$TMP/$name.out" 2>"$TMP/$name.err"
    rc=$?
    ms=$((($(date +%s%N) - start) / 1000000))
    lines=$(wc -l <"$TMP/$name.err")
    echo "$name: exit $rc after $ms ms; stderr: $(cat "$TMP/$name.err")"
    [ "$rc" -ne 0 ] || { echo "FAIL: $name: exit 0"; exit 1; }
    [ "$rc" -ne 124 ] || { echo "FAIL: $name: still running after 30 s"; exit 1; }
    [ "$ms" -lt 6000 ] || { echo "FAIL: $name: took $ms ms (want < 6 s)"; exit 1; }
    [ "$lines" -eq 1 ] || { echo "FAIL: $name: $lines lines on stderr (want 1)"; exit 1; }
    grep -q 'Connection refused; gave up after' "$TMP/$name.err" ||
        { echo "FAIL: $name: stderr does not name the cause"; exit 1; }
    [ ! -s "$TMP/$name.out" ] || { echo "FAIL: $name: wrote to stdout"; cat "$TMP/$name.out"; exit 1; }
    python3 - "$TMP/$name.json" "$MAX_ATTEMPTS" <<'PY' || exit 1
import json, sys
d = json.load(open(sys.argv[1]))
n, most = d["errors_by_kind"]["connect"], int(sys.argv[2])
print("  connect attempts that failed: %d (at most %d allowed)" % (n, most))
if not 1 <= n <= most:
    print("FAIL: %d failed connects" % n)
    sys.exit(1)
PY
}

check proxy --proxy 127.0.0.1:1 --connect 127.0.0.1:9 --host www.bench.test
check direct --connect 127.0.0.1:1 --host www.bench.test
echo "PASS"
