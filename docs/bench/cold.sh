#!/usr/bin/env bash
# Larger than RAM (issue 14): random GETs served from disk with the OS page cache dropped, against the same
# data cached, and against redis-server holding it in RAM. Also times the pipelined load of the data into
# both servers (the issue's "load 10M keys by pipelined SET" figure, with KEYS=10000000).
#
#  1. KEYS pipelined SETs (16-byte keys key:%012d, 100-byte values) are generated once and sent by
#     `redis-cli --pipe` to velo and to redis-server (appendonly everysec); wall time and server CPU time.
#  2. velo is stopped (SHUTDOWN: a final checkpoint puts everything in pages and segments).
#  3. Cold rounds: the data directory's files, and only them, are dropped from the OS page cache
#     (posix_fadvise DONTNEED, docs/bench/cold_data.py), velo restarts with small caches (PAGE_CACHE,
#     VALUE_CACHE; the memtable starts empty), and redis-benchmark sends REQUESTS random GETs over the key
#     space. Restarting each round also unmaps the chunk files: pages a process has mapped are not dropped.
#     Each cold round starts with FIRST GETs from one client (cold-first): once REQUESTS passes the number
#     of 4 KiB pages of the data, a round has read everything and ends warm, and the kernel reads around
#     each cold fault of a mapped chunk file (up to read_ahead_kb: 8 MiB on the project's VM).
#  4. Cached rounds: the same server caches, the files read into the OS page cache and one unmeasured pass.
#  5. redis-server rounds, alternating with velo's.
# Per round: req/s, p50/p99 ms, server CPU µs per GET, and the disk reads it caused (read_bytes from
# /proc/PID/io and major page faults, per GET).
#
# With several velo binaries, each loads its own copy and the rounds alternate between them (A/B runs).
#
# Usage: docs/bench/cold.sh KEYS ROUNDS VELO...
#   e.g. TMPDIR=/tmp/bigdata docs/bench/cold.sh 2000000 3 /tmp/velo-base target/release/velo
# Environment: REQUESTS (GETs per round, 200000), FIRST (2000), CLIENTS (50), PAGE_CACHE (4mb), VALUE_CACHE (4mb),
# LOAD_ONLY=1 (stop after the load figures). The data set needs about KEYS × 180 bytes under TMPDIR
# (velo's files, Redis's AOF, the generated SETs).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 3 ] || { sed -n 2,25p "$0" >&2; exit 2; }
KEYS=$1 ROUNDS=$2
shift 2
VELOS=("$@")
REQUESTS=${REQUESTS:-200000} CLIENTS=${CLIENTS:-50} FIRST=${FIRST:-2000}
PAGE_CACHE=${PAGE_CACHE:-4mb} VALUE_CACHE=${VALUE_CACHE:-4mb}

. docs/bench/common.sh
require_tools redis-server redis-benchmark redis-cli bc python3
HELPER=docs/bench/cold_data.py
tick=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
majflt() { awk '{ print $12 }' "/proc/$1/stat"; }
read_bytes() { awk '/^read_bytes/ { print $2 }' "/proc/$1/io"; }
now() { date +%s.%N; }

velo_port=$(free_port)
redis_port=$(free_port)
velo_use() { # index: the binary and data directory the next velo_start uses
    VELO=${VELOS[$1]} DATA=$BENCH_WORK/velo-data-$1 LABEL=velo$1
}
velo_start() { # [page-cache value-cache]
    "$VELO" serve --port "$velo_port" --dir "$DATA" --fsync everysec --log-level warn \
        --page-cache "${1:-$PAGE_CACHE}" --value-cache "${2:-$VALUE_CACHE}" >/dev/null 2>>"$BENCH_WORK/velo.log" &
    VELO_PID=$!
    BENCH_PIDS+=("$VELO_PID")
    wait_ready "$velo_port"
}
velo_stop() { # SHUTDOWN, then wait until the process has exited (its final checkpoint done)
    redis-cli -p "$velo_port" SHUTDOWN >/dev/null 2>&1 || true
    while kill -0 "$VELO_PID" 2>/dev/null; do sleep 0.05; done
    local kept=() pid
    for pid in "${BENCH_PIDS[@]}"; do [ "$pid" = "$VELO_PID" ] || kept+=("$pid"); done
    BENCH_PIDS=("${kept[@]}")
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for i in "${!VELOS[@]}"; do echo "velo$i: ${VELOS[$i]}"; done
echo "$KEYS keys; caches: page $PAGE_CACHE, value $VALUE_CACHE; $REQUESTS GETs per round, $CLIENTS clients"
python3 "$HELPER" gen "$KEYS" "$BENCH_WORK/sets.resp"

# 1. The load, timed on each server.
printf "%-12s %-8s %9s %10s %12s %14s\n" phase server keys seconds keys/s cpu_us/key
load() { # label pid port
    local before start end after
    before=$(cpu_ticks "$2")
    start=$(now)
    redis-cli -p "$3" --pipe <"$BENCH_WORK/sets.resp" >"$BENCH_WORK/pipe-$1.out"
    end=$(now)
    after=$(cpu_ticks "$2")
    grep -q 'errors: 0' "$BENCH_WORK/pipe-$1.out" || { cat "$BENCH_WORK/pipe-$1.out" >&2; exit 1; }
    printf "%-12s %-8s %9s %10.2f %12.0f %14.2f\n" load "$1" "$KEYS" "$(echo "$end - $start" | bc -l)" \
        "$(echo "$KEYS / ($end - $start)" | bc -l)" "$(echo "($after - $before) * 1000000 / $tick / $KEYS" | bc -l)"
}
for i in "${!VELOS[@]}"; do
    velo_use "$i"
    velo_start 64mb 64mb # the load runs with the default caches
    load "$LABEL" "$VELO_PID" "$velo_port"
    start=$(now) before=$(cpu_ticks "$VELO_PID") after=$(cpu_ticks "$VELO_PID")
    redis-cli -p "$velo_port" SHUTDOWN >/dev/null 2>&1 || true
    # The final checkpoint's CPU: the process's ticks just before it exits.
    while kill -0 "$VELO_PID" 2>/dev/null; do after=$(cpu_ticks "$VELO_PID" 2>/dev/null || echo "$after"); sleep 0.05; done
    velo_stop
    printf "%-12s %-8s %9s %10.2f %12s %14.2f\n" shutdown "$LABEL" "$KEYS" "$(echo "$(now) - $start" | bc -l)" - \
        "$(echo "($after - $before) * 1000000 / $tick / $KEYS" | bc -l)"
    echo "$LABEL data directory: $(du -sm "$DATA" | cut -f1) MB; by file kind (MB): $(find "$DATA" -type f -printf '%s %f\n' |
        awk '{ sub(/[-.].*/, "", $2); b[$2] += $1 } END { for (k in b) if (b[k] >= 1048576) printf "%s %d, ", k, b[k] / 1048576 }')"
done
start_redis "$redis_port"
REDIS_PID=${BENCH_PIDS[-1]}
load redis "$REDIS_PID" "$redis_port"
rm -f "$BENCH_WORK/sets.resp"
echo "redis-server RSS: $(awk '/VmRSS/ { print int($2 / 1024) }' "/proc/$REDIS_PID/status") MB"
[ "${LOAD_ONLY:-0}" = 1 ] && exit 0

# 2. GET rounds.
printf "%-8s %-6s %-12s %10s %8s %8s %11s %12s %10s %9s\n" \
    round server cache req/s p50_ms p99_ms cpu_us/GET read_KB/GET majflt/GET evicted_MB
get_round() { # round label cache pid port evicted_mb [requests clients]
    local requests=${7:-$REQUESTS} clients=${8:-$CLIENTS} before_cpu before_io before_flt rps p50 p99 after_cpu after_io after_flt
    before_cpu=$(cpu_ticks "$4") before_io=$(read_bytes "$4") before_flt=$(majflt "$4")
    read -r rps p50 p99 < <(redis-benchmark -p "$5" -n "$requests" -c "$clients" -r "$KEYS" --csv -q \
        GET 'key:__rand_int__' | awk -F, 'NR==2 { gsub(/"/, ""); print $2, $5, $7 }')
    after_cpu=$(cpu_ticks "$4") after_io=$(read_bytes "$4") after_flt=$(majflt "$4")
    printf "%-8s %-6s %-12s %10.0f %8.3f %8.3f %11.2f %12.2f %10.3f %9s\n" "$1" "$2" "$3" "$rps" "$p50" "$p99" \
        "$(echo "($after_cpu - $before_cpu) * 1000000 / $tick / $requests" | bc -l)" \
        "$(echo "($after_io - $before_io) / 1024 / $requests" | bc -l)" \
        "$(echo "($after_flt - $before_flt) / $requests" | bc -l)" "$6"
}
for round in $(seq "$ROUNDS"); do
    for i in "${!VELOS[@]}"; do
        velo_use "$i"
        read -r cached_before cached_after < <(python3 "$HELPER" evict "$DATA")
        velo_start
        get_round "$round" "$LABEL" cold-first "$VELO_PID" "$velo_port" \
            "$((cached_before >> 20))->$((cached_after >> 20))" "$FIRST" 1
        get_round "$round" "$LABEL" cold "$VELO_PID" "$velo_port" -
        velo_stop
    done
    get_round "$round" redis in-RAM "$REDIS_PID" "$redis_port" -
done
for round in $(seq "$ROUNDS"); do
    for i in "${!VELOS[@]}"; do
        velo_use "$i"
        velo_start
        find "$DATA" -type f -exec cat {} + >/dev/null
        redis-benchmark -p "$velo_port" -n "$REQUESTS" -c "$CLIENTS" -r "$KEYS" -q GET 'key:__rand_int__' >/dev/null
        get_round "$round" "$LABEL" page-cached "$VELO_PID" "$velo_port" -
        velo_stop
    done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
