#!/usr/bin/env bash
# RSS of velo serve against redis-server (appendonly everysec) holding the same data: for each key count,
# fresh servers are loaded by redis-benchmark (random keys over the count, 4.5 requests per key, so about
# 99% of the keys exist; pipelined 16, 50 clients) and their RSS (2 s after the load, and again 3 s later,
# once work that follows a load, such as Velo's checkpoints of idle slots, is done), key count and CPU time
# per SET printed.
#
# Usage: docs/bench/memory.sh VALUE_BYTES KEYS... -- VELO...
#   e.g. docs/bench/memory.sh 100 100000 300000 1000000 -- target/release/velo
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZE=${1:?value size}
shift
COUNTS=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do COUNTS+=("$1"); shift; done
[ $# -ge 2 ] || { sed -n 2,7p "$0" >&2; exit 2; }
shift
VELOS=("$@")

. docs/bench/common.sh
require_tools redis-server redis-benchmark redis-cli bc
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
tick=$(getconf CLK_TCK)
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-40s %9s %6s %10s %8s %8s %10s %12s\n" server keys bytes dbsize rss_MB rss_5s_MB set_req/s cpu_us/req
for count in "${COUNTS[@]}"; do
    requests=$((count * 9 / 2))
    for server in "${VELOS[@]}" redis-server; do
        port=$(free_port)
        if [ "$server" = redis-server ]; then start_redis "$port"; else VELO=$server start_velo "$port"; fi
        pid=${BENCH_PIDS[-1]}
        before=$(cpu_ticks "$pid")
        rps=$(redis-benchmark -p "$port" -t set -n "$requests" -c 50 -d "$SIZE" -r "$count" -P 16 --csv -q |
            awk -F'","' 'NR==2 { gsub(/"/, "", $2); print $2 }')
        after=$(cpu_ticks "$pid")
        sleep 2
        rss=$(awk '/VmRSS/ { print int($2 / 1024) }' "/proc/$pid/status")
        keys=$(redis-cli -p "$port" DBSIZE)
        sleep 3
        settled=$(awk '/VmRSS/ { print int($2 / 1024) }' "/proc/$pid/status")
        cpu=$(echo "($after - $before) * 1000000 / $tick / $requests" | bc -l)
        printf "%-40s %9s %6s %10s %8s %8s %10.0f %12.2f\n" "$server" "$count" "$SIZE" "$keys" "$rss" "$settled" \
            "$rps" "$cpu"
        kill "$pid"
        wait "$pid" 2>/dev/null || true
        rm -rf "$BENCH_WORK/velo-$port" "$BENCH_WORK/redis-$port"
    done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
