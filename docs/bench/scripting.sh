#!/usr/bin/env bash
# Scripting throughput, Velo against redis-server in the same run: EVALSHA of a script doing INCR +
# EXPIRE on one key, and EVAL of a read-only script doing 10 GETs, with 50 clients at -P 1 and -P 16;
# then what scripting costs other clients: plain GET throughput while one client runs EVALSHA in a loop,
# against GET alone. Prints requests per second per server and the ratio velo/redis, and for the
# scripting lines each server's CPU time per request (utime + stime from /proc/<pid>/stat over the run,
# in µs): a figure that, unlike the throughput ratio, does not swing with the machine's load.
#
# Usage: docs/bench/scripting.sh [path/to/velo]   (default: a release build of this tree; REQUESTS
#        overrides the request count). Run it alone: the machine has two cores.
set -euo pipefail
cd "$(dirname "$0")/../.."

REQUESTS=${REQUESTS:-200000}
. docs/bench/common.sh
require_tools redis-server redis-benchmark redis-cli bc
use_velo "${1:-}"

VELO_PORT=$(free_port)
REDIS_PORT=$(free_port)
start_velo "$VELO_PORT"
VELO_PID=${BENCH_PIDS[-1]}
start_redis "$REDIS_PORT"
REDIS_PID=${BENCH_PIDS[-1]}
TICK_US=$((1000000 / $(getconf CLK_TCK)))

# CPU time (user + system) of process $1 so far, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

INCR_SCRIPT="redis.call('incr', KEYS[1]); return redis.call('expire', KEYS[1], 60)"
GET10_SCRIPT="local r = {}; for i = 1, 10 do r[i] = redis.call('get', KEYS[i]) end; return r"

# Requests per second of one redis-benchmark run ($1 port, $2 pipeline, rest: the command).
rps() {
    local port=$1 pipeline=$2
    shift 2
    redis-benchmark -p "$port" -c 50 -n "$REQUESTS" -P "$pipeline" -q "$@" 2>/dev/null |
        tr '\r' '\n' | awk '/requests per second/ { for (i = 2; i <= NF; i++) if ($i == "requests") v = $(i-1) } END { print v }'
}

prepare() {
    local port=$1
    redis-cli -p "$port" MSET k1 v k2 v k3 v k4 v k5 v k6 v k7 v k8 v k9 v k10 v >/dev/null
    redis-cli -p "$port" SCRIPT LOAD "$INCR_SCRIPT"
}

printf "%-34s %12s %12s %8s %14s %14s\n" "benchmark" "velo" "redis" "ratio" "velo µs CPU/req" "redis µs CPU/req"
for pipeline in 1 16; do
    for kind in evalsha eval10; do
        results=()
        cpu=()
        for port in "$VELO_PORT" "$REDIS_PORT"; do
            pid=$([ "$port" = "$VELO_PORT" ] && echo "$VELO_PID" || echo "$REDIS_PID")
            sha=$(prepare "$port")
            before=$(cpu_ticks "$pid")
            if [ "$kind" = evalsha ]; then
                results+=("$(rps "$port" "$pipeline" EVALSHA "$sha" 1 counter)")
            else
                results+=("$(rps "$port" "$pipeline" EVAL "$GET10_SCRIPT" 10 k1 k2 k3 k4 k5 k6 k7 k8 k9 k10)")
            fi
            cpu+=("$(echo "($(cpu_ticks "$pid") - $before) * $TICK_US / $REQUESTS" | bc -l)")
        done
        printf "%-34s %12s %12s %8.2f %14.1f %14.1f\n" "$kind -c 50 -P $pipeline" "${results[0]}" "${results[1]}" \
            "$(echo "${results[0]} / ${results[1]}" | bc -l)" "${cpu[0]}" "${cpu[1]}"
    done
done

# GET from 50 clients alone, then while one client runs EVALSHA back to back.
for port in "$VELO_PORT" "$REDIS_PORT"; do
    sha=$(prepare "$port")
    alone=$(rps "$port" 1 GET k1)
    redis-benchmark -p "$port" -c 1 -n $((REQUESTS * 10)) -q EVALSHA "$sha" 1 counter >/dev/null 2>&1 &
    loop=$!
    BENCH_PIDS+=("$loop")
    busy=$(rps "$port" 1 GET k1)
    kill "$loop" 2>/dev/null || true
    name=$([ "$port" = "$VELO_PORT" ] && echo velo || echo redis)
    printf "%-34s %12s %12s\n" "GET -c 50 alone / with EVALSHA loop" "$alone" "$busy ($name)"
done
