#!/usr/bin/env bash
# XADD throughput on a split stream whose consumer group holds PENDING unacknowledged entries (delivered by
# one XREADGROUP COUNT PENDING, never acknowledged), then the same after XGROUP DESTROY for reference. It
# measures what a group's pending entries list costs every XADD (nothing since the groups have a part of
# their own: 30/s before, 18k/s after, with 200,000 pending entries).
#
# Usage: docs/bench/stream_pel.sh [path/to/velo]   (default: a release build of this tree; PENDING,
#        REQUESTS and CLIENTS override the defaults). Run it alone: the machine has two cores.
set -euo pipefail
cd "$(dirname "$0")/../.."

PENDING=${PENDING:-200000}
REQUESTS=${REQUESTS:-300}
CLIENTS=${CLIENTS:-1}
. docs/bench/common.sh
require_tools redis-benchmark redis-cli
use_velo "${1:-}"
PORT=$(free_port)
start_velo "$PORT"

echo "loading a $PENDING-entry stream and delivering it to one consumer without ACK..." >&2
awk -v n="$PENDING" 'BEGIN { for (i = 0; i < n; i++) printf "XADD s * f v%d\n", i }' | redis-cli -p "$PORT" >/dev/null
redis-cli -p "$PORT" XGROUP CREATE s g 0 >/dev/null
redis-cli -p "$PORT" XREADGROUP GROUP g alice COUNT "$PENDING" STREAMS s '>' >/dev/null
echo "  XLEN s = $(redis-cli -p "$PORT" XLEN s), pending = $(redis-cli -p "$PORT" XPENDING s g | head -1)" >&2

# Prints "name rps p50-ms" for XADD on the stream.
bench() {
    redis-benchmark -p "$PORT" -n "$2" -c "$CLIENTS" --csv XADD s '*' f v \
        | awk -F'","' -v name="$1" 'NR==2 { gsub(/"/, "", $2); printf "%-34s %12s %10s\n", name, $2, $4 }'
}

printf "%-34s %12s %10s\n" case rps p50-ms
bench "XADD, $PENDING pending" "$REQUESTS"
redis-cli -p "$PORT" XGROUP DESTROY s g >/dev/null
bench "XADD, group destroyed" $((REQUESTS * 50))
