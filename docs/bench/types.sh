#!/usr/bin/env bash
# Benchmarks the collection commands of `velo serve` against `redis-server --appendonly yes` on the same
# machine, in the same run, alternating between the two (issue 4):
#   1. redis-benchmark -t lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,lrange_100,lrange_600 (50 clients,
#      redis-benchmark's own keys): throughput of each, Velo/Redis ratio (target >= 0.8).
#   2. HSET and HGET of single fields on one hash of 1M fields against the same on a 10-field hash: the
#      big/small ratio shows whether a large hash is rewritten whole (target >= 0.5 on Velo).
#
# Usage: docs/bench/types.sh            (REQUESTS / ROUNDS / FIELDS override the defaults)
set -euo pipefail
cd "$(dirname "$0")/../.."

REQUESTS=${REQUESTS:-200000}
ROUNDS=${ROUNDS:-2}
FIELDS=${FIELDS:-1000000}
CLIENTS=50
TESTS=lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,lrange_100,lrange_600

. docs/bench/common.sh
require_tools redis-server redis-benchmark redis-cli bc
use_velo
VELO_PORT=$(free_port)
REDIS_PORT=$(free_port)
start_velo "$VELO_PORT"
start_redis "$REDIS_PORT"

# Prints "test|rps" lines for one redis-benchmark run of the standard tests (test names contain spaces).
standard() {
    redis-benchmark -p "$1" -t "$TESTS" -n "$REQUESTS" -c "$CLIENTS" --csv -q \
        | awk -F'","' 'NR>1 { gsub(/"/, "", $1); gsub(/"/, "", $2); print $1 "|" $2 }'
}

declare -A VELO_SUM REDIS_SUM
for round in $(seq "$ROUNDS"); do
    for server in velo redis; do
        port=$VELO_PORT
        [ "$server" = redis ] && port=$REDIS_PORT
        redis-cli -p "$port" FLUSHALL >/dev/null
        while IFS='|' read -r test rps; do
            if [ "$server" = velo ]; then
                VELO_SUM[$test]=$(echo "${VELO_SUM[$test]:-0} + $rps" | bc -l)
            else
                REDIS_SUM[$test]=$(echo "${REDIS_SUM[$test]:-0} + $rps" | bc -l)
            fi
        done < <(standard "$port")
    done
done

printf "%-40s %12s %12s %8s\n" test velo_rps redis_rps ratio
for test in "${!VELO_SUM[@]}"; do
    velo=$(echo "${VELO_SUM[$test]} / $ROUNDS" | bc -l)
    redis=$(echo "${REDIS_SUM[$test]:-0} / $ROUNDS" | bc -l)
    printf "%-40s %12.0f %12.0f %8.2f\n" "$test" "$velo" "$redis" "$(echo "$velo / $redis" | bc -l)"
done | sort
echo "target: ratio >= 0.8 for every test" >&2

# One hash of $FIELDS fields (named like redis-benchmark's __rand_int__: 12 zero-padded digits) and one of 10.
echo "loading a hash of $FIELDS fields into both servers..." >&2
for port in "$VELO_PORT" "$REDIS_PORT"; do
    redis-cli -p "$port" FLUSHALL >/dev/null
    awk -v n="$FIELDS" 'BEGIN { for (i = 0; i < n; i += 500) { line = "HSET big"; for (j = i; j < i + 500 && j < n; j++) line = line sprintf(" f%012d v", j); print line } }' \
        | redis-cli -p "$port" >/dev/null
    redis-cli -p "$port" HSET small f000000000000 v f000000000001 v f000000000002 v f000000000003 v \
        f000000000004 v f000000000005 v f000000000006 v f000000000007 v f000000000008 v f000000000009 v >/dev/null
    echo "  port $port: HLEN big = $(redis-cli -p "$port" HLEN big)" >&2
done

# Prints the rps of one single-field command on `key` whose fields come from a space of `range`.
field_rps() {
    local port=$1 verb=$2 key=$3 range=$4
    local args=(f__rand_int__)
    [ "$verb" = HSET ] && args+=(x)
    redis-benchmark -p "$port" -n "$REQUESTS" -c "$CLIENTS" -r "$range" --csv -q "$verb" "$key" "${args[@]}" \
        | awk -F'","' 'NR==2 { gsub(/"/, "", $2); print $2 }'
}

printf "\n%-6s %-6s %12s %12s %10s\n" server verb big_rps small_rps big/small
for server in velo redis; do
    port=$VELO_PORT
    [ "$server" = redis ] && port=$REDIS_PORT
    for verb in HSET HGET; do
        big=0; small=0
        for round in $(seq "$ROUNDS"); do
            big=$(echo "$big + $(field_rps "$port" "$verb" big "$FIELDS")" | bc -l)
            small=$(echo "$small + $(field_rps "$port" "$verb" small 10)" | bc -l)
        done
        printf "%-6s %-6s %12.0f %12.0f %10.2f\n" "$server" "$verb" "$(echo "$big / $ROUNDS" | bc -l)" \
            "$(echo "$small / $ROUNDS" | bc -l)" "$(echo "$big / $small" | bc -l)"
    done
done
echo "target: big/small >= 0.5 on velo" >&2
