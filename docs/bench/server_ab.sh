#!/usr/bin/env bash
# Compares velo binaries with each other and with `redis-server --appendonly yes --appendfsync everysec`
# on one redis-benchmark test (50 clients, 256-byte values, a 1M-key space), alternating between the
# servers in every round. Besides throughput and p99 it prints each server's CPU time per request (user +
# system, from /proc), which moves far less than throughput when other work shares the cores.
#
# Usage: docs/bench/server_ab.sh TEST PIPELINE REQUESTS ROUNDS VELO...
#   e.g. docs/bench/server_ab.sh get 16 500000 2 /tmp/velo-before target/release/velo
# GET runs are preceded by 1M pipelined SETs on every server, so that the keys exist.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 5 ] || { sed -n 2,9p "$0" >&2; exit 2; }
TEST=$1 PIPELINE=$2 REQUESTS=$3 ROUNDS=$4
shift 4

. docs/bench/common.sh
require_tools redis-server redis-benchmark redis-cli bc
LABELS=() PORTS=() PIDS=()
for VELO in "$@"; do
    port=$(free_port)
    start_velo "$port"
    LABELS+=("$VELO") PORTS+=("$port") PIDS+=("${BENCH_PIDS[-1]}")
done
port=$(free_port)
start_redis "$port"
LABELS+=(redis-server) PORTS+=("$port") PIDS+=("${BENCH_PIDS[-1]}")

if [ "$TEST" = get ]; then
    for port in "${PORTS[@]}"; do
        redis-benchmark -p "$port" -t set -n 1000000 -c 50 -d 256 -r 1000000 -P 16 -q >/dev/null
    done
fi
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
tick=$(getconf CLK_TCK)
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-5s %-40s %-4s %-3s %10s %9s %9s %12s %7s\n" round server test P req/s p99_ms max_ms cpu_us/req rss_MB
for round in $(seq "$ROUNDS"); do
    for i in "${!PORTS[@]}"; do
        before=$(cpu_ticks "${PIDS[$i]}")
        read -r rps p99 max < <(redis-benchmark -p "${PORTS[$i]}" -t "$TEST" -n "$REQUESTS" -c 50 -d 256 -r 1000000 \
            -P "$PIPELINE" --csv -q | awk -F'","' 'NR==2 { gsub(/"/, "", $2); gsub(/"/, "", $7); gsub(/"/, "", $8); print $2, $7, $8 }')
        after=$(cpu_ticks "${PIDS[$i]}")
        rss=$(awk '/VmRSS/ { print int($2 / 1024) }' "/proc/${PIDS[$i]}/status")
        cpu=$(echo "($after - $before) * 1000000 / $tick / $REQUESTS" | bc -l)
        printf "%-5s %-40s %-4s %-3s %10.0f %9.3f %9.3f %12.2f %7s\n" "$round" "${LABELS[$i]}" "$TEST" "$PIPELINE" \
            "$rps" "$p99" "$max" "$cpu" "$rss"
    done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
