#!/usr/bin/env bash
# A BullMQ-shaped script on a sorted set of 2,000 members (issue 9's second figure): each call reads the
# 10 lowest-scored members (ZRANGEBYSCORE ... WITHSCORES LIMIT 0 10), and for each one removes it (ZREM),
# deletes its job hash (DEL), adds it back 2,000 points higher (ZADD) and writes its job hash (HSET): 41
# commands, 20 of them writes to the sorted set, which keeps its 2,000 members throughout. Then the same
# sorted-set writes alone, outside scripts: ZADD updating the score of an existing member, with 50
# clients at -P 16. Velo (one or two builds) and redis-server run in the same run, each line on each
# server in turn. Prints calls per second and each server's CPU time per call in µs, from
# /proc/<pid>/stat (a figure that does not swing with the machine's load).
#
# Usage: docs/bench/zset_script.sh VELO [VELO2]   (N calls per script run, default 4000; ROUNDS,
#        default 2). Run it alone: the machine has two cores. Under load, run it with `chrt -f 10`.
set -euo pipefail
cd "$(dirname "$0")/../.."

N=${N:-4000}
ROUNDS=${ROUNDS:-2}
MEMBERS=2000
. docs/bench/common.sh
require_tools redis-server redis-benchmark redis-cli bc
[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: $0 VELO [VELO2]" >&2; exit 2; }

TARGETS=()
NAMES=()
for velo in "$@"; do
    port=$(free_port)
    VELO=$velo start_velo "$port"
    TARGETS+=("$port:${BENCH_PIDS[-1]}")
    NAMES+=("$(basename "$velo")")
done
REDIS_PORT=$(free_port)
start_redis "$REDIS_PORT"
TARGETS+=("$REDIS_PORT:${BENCH_PIDS[-1]}")
NAMES+=(redis)

SCRIPT="local r = redis.call('zrangebyscore', KEYS[1], '-inf', '+inf', 'withscores', 'limit', 0, 10)
for i = 1, #r, 2 do
  local id, score = r[i], tonumber(r[i + 1])
  redis.call('zrem', KEYS[1], id)
  redis.call('del', 'job:' .. id)
  redis.call('zadd', KEYS[1], score + $MEMBERS, id)
  redis.call('hset', 'job:' .. id, 'state', 'moved', 'score', score + $MEMBERS)
end
return #r / 2"

# The sorted set q: members 000000000000..000000001999 (redis-benchmark's __rand_int__ form) scored
# 0..1999, in batches of 100.
for target in "${TARGETS[@]}"; do
    port=${target%%:*}
    for batch in $(seq 0 $((MEMBERS / 100 - 1))); do
        args=()
        for i in $(seq 0 99); do
            member=$((batch * 100 + i))
            args+=("$member" "$(printf %012d "$member")")
        done
        redis-cli -p "$port" ZADD q "${args[@]}" >/dev/null
    done
    [ "$(redis-cli -p "$port" ZCARD q)" = "$MEMBERS" ] || { echo "loading q failed on port $port" >&2; exit 1; }
    SHA=$(redis-cli -p "$port" SCRIPT LOAD "$SCRIPT")
done

# CPU time (user + system) of process $1 so far, in ns: /proc/<pid>/stat, which keeps the time of threads
# that have exited (a script that hands its worker off starts threads that end ten seconds later; a sum
# over /proc/<pid>/task/*/schedstat loses their time and can even go down).
TICK_NS=$((1000000000 / $(getconf CLK_TCK)))
cpu_ns() { awk -v tick="$TICK_NS" '{ printf "%.0f\n", ($14 + $15) * tick }' "/proc/$1/stat"; }

# Requests per second of one redis-benchmark run ($1 port, $2 clients, $3 requests, $4 pipeline, rest:
# the command).
rps() {
    local port=$1 clients=$2 requests=$3 pipeline=$4
    shift 4
    redis-benchmark -p "$port" -c "$clients" -n "$requests" -P "$pipeline" -r "$MEMBERS" -q "$@" 2>/dev/null |
        tr '\r' '\n' | awk '/requests per second/ { for (i = 2; i <= NF; i++) if ($i == "requests") v = $(i-1) } END { print v + 0 }'
}

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-22s %5s |" test round
for name in "${NAMES[@]}"; do printf " %14s" "$name"; done
printf " | calls/s, then µs CPU per call\n"
run_line() {
    local label=$1 clients=$2 requests=$3 pipeline=$4
    shift 4
    for round in $(seq "$ROUNDS"); do
        local rates=() cpus=()
        for target in "${TARGETS[@]}"; do
            local port=${target%%:*} pid=${target##*:} before
            before=$(cpu_ns "$pid")
            rates+=("$(rps "$port" "$clients" "$requests" "$pipeline" "$@")")
            cpus+=("$(echo "($(cpu_ns "$pid") - $before) / 1000 / $requests" | bc -l)")
        done
        printf "%-22s %5s |" "$label" "$round"
        for rate in "${rates[@]}"; do printf " %14.0f" "$rate"; done
        printf " |"
        for cpu in "${cpus[@]}"; do printf " %8.1f" "$cpu"; done
        printf "\n"
    done
}
run_line "script, 1 client" 1 "$N" 1 EVALSHA "$SHA" 1 q
run_line "script, 50 clients" 50 "$N" 1 EVALSHA "$SHA" 1 q
run_line "ZADD -P16, 50 clients" 50 $((N * 10)) 16 ZADD q __rand_int__ __rand_int__
for target in "${TARGETS[@]}"; do
    [ "$(redis-cli -p "${target%%:*}" ZCARD q)" = "$MEMBERS" ] || echo "q lost members on port ${target%%:*}" >&2
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
