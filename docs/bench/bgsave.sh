#!/usr/bin/env bash
# Snapshot benchmark (issue 10): what writing an RDB costs, on Velo and redis-server in the same run.
#
#   docs/bench/bgsave.sh [VELO_BINARY]      # KEYS=1000000 REQUESTS=300000 by default
#
# For each server, after loading KEYS keys (100-byte values) by pipelined SET:
# 1. SAVE: the time the server takes to write dump.rdb, and its size; for Velo also `velo rdb-dump` of its
#    live directory (at the end).
# 2. Writers' latency: redis-benchmark SET (50 clients, -P 1, random keys over KEYS) alone, then the same while
#    BGSAVE runs back to back for the whole benchmark; throughput and p99 of both, and how many BGSAVEs
#    completed during it.
# Targets (issue 10): rdb-dump time <= 1.0x redis-server's SAVE. No target for the p99 yet: report it.
# State the machine's load (uptime) with the figures.
set -euo pipefail
cd "$(dirname "$0")/../.."

KEYS=${KEYS:-1000000}
REQUESTS=${REQUESTS:-300000}
CLIENTS=50

. docs/bench/common.sh
require_tools redis-server redis-benchmark redis-cli bc
use_velo "${1:-}"
VELO_PORT=$(free_port)
REDIS_PORT=$(free_port)
start_velo "$VELO_PORT"
start_redis "$REDIS_PORT"

# Prints "requests_per_second p99_ms" of a SET benchmark against port $1.
set_load() {
    redis-benchmark -p "$1" -t set -n "$REQUESTS" -c "$CLIENTS" -d 100 -r "$KEYS" -P 1 --csv -q \
        | awk -F'","' 'NR==2 { gsub(/"/, "", $2); gsub(/"/, "", $7); print $2, $7 }'
}

# Runs BGSAVE on port $1 back to back until the file $2 appears; prints the number of completed saves.
bgsave_loop() {
    local port=$1 stop=$2 done_count=0
    while [ ! -e "$stop" ]; do
        redis-cli -p "$port" BGSAVE >/dev/null 2>&1 || true
        while [ "$(redis-cli -p "$port" INFO persistence | tr -d '\r' | awk -F: '/^rdb_bgsave_in_progress/ {print $2}')" = 1 ]; do
            sleep 0.05
        done
        done_count=$((done_count + 1))
    done
    echo "$done_count"
}

now() { date +%s.%N; }

echo "machine: $(uptime)"
for server in velo redis; do
    port=$VELO_PORT
    [ "$server" = redis ] && port=$REDIS_PORT
    redis-benchmark -p "$port" -t set -n $((KEYS * 2)) -c "$CLIENTS" -d 100 -r "$KEYS" -P 16 -q >/dev/null
    keys=$(redis-cli -p "$port" DBSIZE)

    start=$(now)
    redis-cli -p "$port" SAVE >/dev/null
    save_s=$(echo "$(now) - $start" | bc -l)
    dir=$(redis-cli -p "$port" CONFIG GET dir | sed -n 2p)
    file=$(redis-cli -p "$port" CONFIG GET dbfilename | sed -n 2p)
    size=$(stat -c %s "$dir/$file")
    printf "%-6s %d keys: SAVE %.2f s, %d bytes\n" "$server" "$keys" "$save_s" "$size"
    read -r rps p99 < <(set_load "$port")
    printf "%-6s SET alone:        %10.0f req/s  p99 %7.3f ms\n" "$server" "$rps" "$p99"
    stop=$BENCH_WORK/stop-$server
    bgsave_loop "$port" "$stop" >"$BENCH_WORK/saves-$server" &
    loop=$!
    read -r rps p99 < <(set_load "$port")
    touch "$stop"
    wait "$loop"
    printf "%-6s SET during BGSAVE: %9.0f req/s  p99 %7.3f ms  (%s BGSAVEs)\n" "$server" "$rps" "$p99" \
        "$(cat "$BENCH_WORK/saves-$server")"
done

# The offline tool on the live directory (the server sends its snapshot; the tool checks and rewrites it).
start=$(now)
"$VELO" rdb-dump --dir "$BENCH_WORK/velo-$VELO_PORT" -o "$BENCH_WORK/velo-dump.rdb" >/dev/null
printf "velo   rdb-dump of the live directory: %.2f s, %d bytes\n" "$(echo "$(now) - $start" | bc -l)" \
    "$(stat -c %s "$BENCH_WORK/velo-dump.rdb")"
