#!/bin/sh
# bench/longpath.sh - HTTP/2 over a long path: a 10 MB download from an h2 nginx 25 ms away
# each way (bench/delayline), directly and through mitmd, at several link rates; prints the
# median body throughput of each (MB/s) and mitmd / direct. Uses the integration test
# tests/integration/longpath/h2_download_50ms.py for the set-up (nginx, PKI, mitmd, delay line)
# with its assertion turned off.
#
#   bench/longpath.sh [BUILD_DIR [RATE_MB_PER_S...]]     (defaults: build, 12.5 25 0; 0 = no limit)
#
# Environment: RUNS (default 3), DELAY_MS (one way, default 25), MITMD (default BUILD_DIR/mitmd).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=${1:-$root/build}
[ $# -gt 0 ] && shift
rates=${*:-12.5 25 0}
mitmd=${MITMD:-$build/mitmd}
runs=${RUNS:-3}
delay=${DELAY_MS:-25}
py=/usr/bin/python3
[ -x "$py" ] || py=python3
for f in "$mitmd" "$build/delayline"; do
    if [ ! -x "$f" ]; then
        echo "longpath.sh: $f missing: build first (cmake --build $build)" >&2
        exit 1
    fi
done
printf '%-22s %12s %12s %8s\n' "link (one-way $delay ms)" "direct MB/s" "mitmd MB/s" "ratio"
for rate in $rates; do
    out=$("$py" "$root/tests/integration/longpath/h2_download_50ms.py" --mitmd "$mitmd" \
        --delayline "$build/delayline" --rate "$rate" --delay-ms "$delay" --runs "$runs" \
        --min-ratio 0 2>&1) || { echo "$out" | tail -20 >&2; exit 1; }
    line=$(echo "$out" | grep '^RESULT' || true)
    if [ -z "$line" ]; then
        echo "$out" | tail -20 >&2
        exit 1
    fi
    d=$(echo "$line" | sed 's/.*direct_MBps=\([^ ]*\).*/\1/')
    m=$(echo "$line" | sed 's/.*mitmd_MBps=\([^ ]*\).*/\1/')
    r=$(echo "$line" | sed 's/.*ratio=\([^ ]*\).*/\1/')
    if [ "$rate" = 0 ]; then
        label=unlimited
    else
        label="$rate MB/s"
    fi
    printf '%-22s %12s %12s %8s\n' "$label" "$d" "$m" "$r"
done
