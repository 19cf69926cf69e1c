#!/bin/sh
# bench/replay_roundtrip.sh - the issue 12 round trip at full size: record 10,000 requests of
# a mixed HTTP/1.1 workload through mitmd (-w, save_bodies), replay them with mitmd-bench
# --replay at 5x through a second mitmd against the same origins, and compare the two flow
# files (same requests, same statuses). It is tests/integration/replay/record_replay_roundtrip.py
# with REPLAY_ROUNDTRIP_N (default here 10000) and mitmd-bench -c REPLAY_ROUNDTRIP_C (64). Usage: bench/replay_roundtrip.sh [BUILD_DIR] [N]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
REPLAY_ROUNDTRIP_N=${2:-10000} REPLAY_ROUNDTRIP_C=${REPLAY_ROUNDTRIP_C:-64} exec python3 -B \
  "$here/../tests/integration/replay/record_replay_roundtrip.py" --mitmd "$build/mitmd" -v
