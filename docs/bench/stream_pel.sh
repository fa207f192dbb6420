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
VELO=${1:-}
if [ -z "$VELO" ]; then
    echo "building velo (release)..." >&2
    cargo build --release --quiet
    VELO="${CARGO_TARGET_DIR:-target}/release/velo"
fi

free_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
}

WORK=$(mktemp -d)
PORT=$(free_port)
"$VELO" serve --port "$PORT" --dir "$WORK/velo" --fsync everysec --log-level warn >/dev/null 2>"$WORK/velo.log" &
PID=$!
cleanup() {
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
for _ in $(seq 100); do
    redis-cli -p "$PORT" PING >/dev/null 2>&1 && break
    sleep 0.1
done

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
