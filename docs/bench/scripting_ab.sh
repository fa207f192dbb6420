#!/usr/bin/env bash
# Two Velo builds against each other and redis-server, for a change to scripting's speed on a shared
# machine: the same scripts as scripting.sh (EVALSHA of INCR + EXPIRE, EVAL of 10 GETs; 50 clients,
# -P 1 and -P 16), the three servers running at once and each benchmark line run on the three in turn,
# ROUNDS times (so that a change in the machine's load hits all three alike). Prints requests per
# second and each server's CPU time per request in µs, from /proc/<pid>/stat (utime + stime of the
# process, which keeps the time of threads that exited during the run; a sum over
# /proc/<pid>/task/*/schedstat, used before, lost it when a script handed its worker off).
#
# Usage: docs/bench/scripting_ab.sh BASE_VELO NEW_VELO   (N requests per run, default 40000; ROUNDS,
#        default 3). Run it alone: the machine has two cores.
set -euo pipefail
cd "$(dirname "$0")/../.."

N=${N:-40000}
ROUNDS=${ROUNDS:-3}
. docs/bench/common.sh
require_tools redis-server redis-benchmark redis-cli bc
[ $# -eq 2 ] || { echo "usage: $0 BASE_VELO NEW_VELO" >&2; exit 2; }

start_velo_binary() {
    "$1" serve --port "$2" --dir "$BENCH_WORK/velo-$2" --fsync everysec --log-level warn \
        >/dev/null 2>"$BENCH_WORK/velo-$2.log" &
    BENCH_PIDS+=($!)
    wait_ready "$2"
}

BASE_PORT=$(free_port)
NEW_PORT=$(free_port)
REDIS_PORT=$(free_port)
start_velo_binary "$1" "$BASE_PORT"
BASE_PID=${BENCH_PIDS[-1]}
start_velo_binary "$2" "$NEW_PORT"
NEW_PID=${BENCH_PIDS[-1]}
start_redis "$REDIS_PORT"
REDIS_PID=${BENCH_PIDS[-1]}

INCR_SCRIPT="redis.call('incr', KEYS[1]); return redis.call('expire', KEYS[1], 60)"
GET10_SCRIPT="local r = {}; for i = 1, 10 do r[i] = redis.call('get', KEYS[i]) end; return r"
for port in "$BASE_PORT" "$NEW_PORT" "$REDIS_PORT"; do
    redis-cli -p "$port" MSET k1 v k2 v k3 v k4 v k5 v k6 v k7 v k8 v k9 v k10 v >/dev/null
    SHA=$(redis-cli -p "$port" SCRIPT LOAD "$INCR_SCRIPT")
done

# CPU time (user + system) of process $1 so far, in ns, exited threads included.
TICK_NS=$((1000000000 / $(getconf CLK_TCK)))
cpu_ns() { awk -v tick="$TICK_NS" '{ printf "%.0f\n", ($14 + $15) * tick }' "/proc/$1/stat"; }

rps() {
    local port=$1 pipeline=$2
    shift 2
    redis-benchmark -p "$port" -c 50 -n "$N" -P "$pipeline" -q "$@" 2>/dev/null |
        tr '\r' '\n' | awk '/requests per second/ { for (i = 2; i <= NF; i++) if ($i == "requests") v = $(i-1) } END { print v }'
}

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-14s %5s | %9s %9s %9s | %7s %7s %7s\n" benchmark round "base" "new" "redis" "base" "new" "redis"
printf "%-14s %5s | %29s | %23s\n" "" "" "requests per second" "µs CPU per request"
for pipeline in 1 16; do
    for kind in evalsha eval10; do
        for round in $(seq "$ROUNDS"); do
            results=()
            cpu=()
            for target in "$BASE_PORT:$BASE_PID" "$NEW_PORT:$NEW_PID" "$REDIS_PORT:$REDIS_PID"; do
                port=${target%%:*}
                pid=${target##*:}
                before=$(cpu_ns "$pid")
                if [ "$kind" = evalsha ]; then
                    results+=("$(rps "$port" "$pipeline" EVALSHA "$SHA" 1 counter)")
                else
                    results+=("$(rps "$port" "$pipeline" EVAL "$GET10_SCRIPT" 10 k1 k2 k3 k4 k5 k6 k7 k8 k9 k10)")
                fi
                cpu+=("$(echo "($(cpu_ns "$pid") - $before) / 1000 / $N" | bc -l)")
            done
            printf "%-14s %5s | %9.0f %9.0f %9.0f | %7.2f %7.2f %7.2f\n" "$kind -P$pipeline" "$round" \
                "${results[@]}" "${cpu[@]}"
        done
    done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
