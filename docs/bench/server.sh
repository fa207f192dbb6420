#!/usr/bin/env bash
# Benchmarks `velo serve` against `redis-server --appendonly yes --appendfsync everysec` on the same machine,
# in the same run, alternating between the two: SET and GET, 50 clients, 256-byte values, a 1M-key space,
# with -P 16 and -P 1. Prints throughput and p99 latency of both and the Velo/Redis ratios.
#
# Usage: docs/bench/server.sh [VELO]     (a velo binary; default: a fresh release build. REQUESTS_P16 /
#                                       REQUESTS_P1 / ROUNDS override the defaults)
set -euo pipefail
cd "$(dirname "$0")/../.."

REQUESTS_P16=${REQUESTS_P16:-2000000}
REQUESTS_P1=${REQUESTS_P1:-300000}
ROUNDS=${ROUNDS:-2}
CLIENTS=50
SIZE=256
KEYSPACE=1000000

. docs/bench/common.sh
require_tools redis-server redis-benchmark redis-cli bc
use_velo "${1:-}"
VELO_PORT=$(free_port)
REDIS_PORT=$(free_port)
start_velo "$VELO_PORT"
start_redis "$REDIS_PORT"

# One run: prints "rps p99_ms".
run() {
    local port=$1 test=$2 pipeline=$3 requests=$4
    redis-benchmark -p "$port" -t "$test" -n "$requests" -c "$CLIENTS" -d "$SIZE" -r "$KEYSPACE" -P "$pipeline" --csv -q \
        | awk -F'","' 'NR==2 { gsub(/"/, "", $2); gsub(/"/, "", $7); print $2, $7 }'
}

printf "%-6s %-3s %12s %12s %8s %10s %10s %8s\n" test P velo_rps redis_rps ratio velo_p99 redis_p99 ratio
for pipeline in 16 1; do
    requests=$REQUESTS_P16
    [ "$pipeline" = 1 ] && requests=$REQUESTS_P1
    for test in set get; do
        velo_rps=0; redis_rps=0; velo_p99=0; redis_p99=0
        for round in $(seq "$ROUNDS"); do
            read -r rps p99 < <(run "$VELO_PORT" "$test" "$pipeline" "$requests")
            velo_rps=$(echo "$velo_rps + $rps" | bc -l); velo_p99=$(echo "$velo_p99 + $p99" | bc -l)
            read -r rps p99 < <(run "$REDIS_PORT" "$test" "$pipeline" "$requests")
            redis_rps=$(echo "$redis_rps + $rps" | bc -l); redis_p99=$(echo "$redis_p99 + $p99" | bc -l)
        done
        velo_rps=$(echo "$velo_rps / $ROUNDS" | bc -l); redis_rps=$(echo "$redis_rps / $ROUNDS" | bc -l)
        velo_p99=$(echo "$velo_p99 / $ROUNDS" | bc -l); redis_p99=$(echo "$redis_p99 / $ROUNDS" | bc -l)
        printf "%-6s %-3s %12.0f %12.0f %8.2f %10.3f %10.3f %8.2f\n" "$test" "$pipeline" "$velo_rps" "$redis_rps" \
            "$(echo "$velo_rps / $redis_rps" | bc -l)" "$velo_p99" "$redis_p99" "$(echo "$velo_p99 / $redis_p99" | bc -l)"
    done
done
echo "targets: throughput ratio >= 1.0 with -P 16, >= 0.9 with -P 1; p99 ratio <= 1.5" >&2
