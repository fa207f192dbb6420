#!/usr/bin/env bash
# Offline tools benchmark (issue 12): `velo check` and `velo bigkeys` on a data directory of ROWS keys
# (16-byte keys, 100-byte values), built with `velo ingest-parquet` from scripts/gen_parquet.rs output.
#
#   docs/bench/tools.sh [ROWS] [WORK]     # defaults: 10000000 (10M) keys, a fresh temporary directory
#   VELO=path/to/velo docs/bench/tools.sh ...   # measure that binary (the data is made by it too)
#
# Reports per tool: wall time, user+system CPU time, MB/s of data directory (its size on disk / wall
# time, and / CPU time, which is what a quiet machine would show per core), peak RSS (/usr/bin/time -v).
# Runs each tool twice: the first run warms the page cache, the second is the one reported. With
# COLD=1 the data directory's files (only they: the machine may be shared) are evicted from the page
# cache (posix_fadvise DONTNEED, python3) before a third, cold, run of `velo check`.
# Targets (issue 12): >= 1 GB/s of data checked with a warm cache, RSS <= 200 MB.
#
# Then (SERVE=0 skips it) the server's throughput while the tools run: `velo serve` on the same directory,
# two redis-benchmark clients (SET and GET of the directory's own keys, k + 15 digits, random; CLIENTS
# connections each, pipeline PIPE) running throughout, and windows of SERVE_SECONDS: alone, then with
# `velo check`, then `velo bigkeys` (each run again and again for the window, read-only beside the running
# server; at nice 0, i.e. `--nice 0`), then each tool at nice 19 (NICE=0 skips those), an "alone" window between each. Per
# window: the server's requests/s (INFO's total_commands_processed), its CPU per request, and the tool's
# runs and mean wall time.
set -euo pipefail
ROWS=${1:-10000000}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${2:-$(mktemp -d)}
KEEP=${KEEP:-}
mkdir -p "$WORK"
[ -z "$KEEP" ] && trap 'rm -rf "$WORK/data" "$WORK/in.parquet"' EXIT
cd "$ROOT"
# VELO=path measures that binary instead (e.g. another commit's build; the data is made by it too).
if [ -z "${VELO:-}" ]; then
    cargo build --release --quiet --bin velo
    VELO=$ROOT/target/release/velo
fi
if [ ! -d "$WORK/data" ]; then
    cargo build --release --quiet --example gen_parquet
    "$ROOT/target/release/examples/gen_parquet" "$WORK/in.parquet" "$ROWS"
    "$VELO" ingest-parquet "$WORK/in.parquet" --dir "$WORK/data" --key key --value value --quiet
    rm -f "$WORK/in.parquet"
fi
BYTES=$(du -sb "$WORK/data" | cut -f1)
echo "data directory: $BYTES bytes, $ROWS keys; commit $(git rev-parse --short HEAD); $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"

run() {
    local name=$1; shift
    local log=$WORK/time.log
    /usr/bin/time -v "$@" >/dev/null 2>"$log" || [ $? -le 1 ]
    local wall user sys rss
    wall=$(grep 'Elapsed (wall' "$log" | awk '{print $NF}' | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
    user=$(grep 'User time' "$log" | awk '{print $NF}')
    sys=$(grep 'System time' "$log" | awk '{print $NF}')
    rss=$(grep 'Maximum resident' "$log" | awk '{print $NF}')
    local cpu
    cpu=$(echo "$user + $sys" | bc)
    printf '%-22s wall %6.2f s  cpu %6.2f s (user %s, sys %s)  %6.0f MB/s wall  %6.0f MB/s per cpu-s  peak RSS %d MB\n' \
        "$name" "$wall" "$cpu" "$user" "$sys" "$(echo "$BYTES / $wall / 1000000" | bc -l)" \
        "$(echo "$BYTES / $cpu / 1000000" | bc -l)" "$((rss / 1024))"
}

run "check (warm-up)" "$VELO" check --dir "$WORK/data"
run "check" "$VELO" check --dir "$WORK/data"
run "bigkeys (warm-up)" "$VELO" bigkeys --dir "$WORK/data"
run "bigkeys" "$VELO" bigkeys --dir "$WORK/data"
if [ -n "${COLD:-}" ]; then
    sync
    python3 -c 'import os, sys
for root, _, files in os.walk(sys.argv[1]):
    for name in files:
        fd = os.open(os.path.join(root, name), os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)' "$WORK/data"
    run "check (cold cache)" "$VELO" check --dir "$WORK/data"
fi

[ "${SERVE:-1}" = 0 ] && exit 0
SECONDS_PER=${SERVE_SECONDS:-10}
CLIENTS=${CLIENTS:-25}
PIPE=${PIPE:-1}
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PIDS=()
stop_all() {
    if [ ${#PIDS[@]} -gt 0 ]; then kill "${PIDS[@]}" 2>/dev/null || true; wait "${PIDS[@]}" 2>/dev/null || true; fi
    [ -z "$KEEP" ] && rm -rf "$WORK/data" "$WORK/in.parquet"
    return 0
}
trap stop_all EXIT
"$VELO" serve --port "$PORT" --dir "$WORK/data" --fsync everysec --log-level warn >/dev/null 2>"$WORK/serve.log" &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
for _ in $(seq 300); do redis-cli -p "$PORT" PING >/dev/null 2>&1 && break; sleep 0.1; done
VALUE=$(head -c 100 /dev/zero | tr '\0' v)
redis-benchmark -p "$PORT" -c "$CLIENTS" -P "$PIPE" -n 2000000000 -r "$ROWS" SET k000__rand_int__ "$VALUE" >/dev/null 2>&1 &
PIDS+=($!)
redis-benchmark -p "$PORT" -c "$CLIENTS" -P "$PIPE" -n 2000000000 -r "$ROWS" GET k000__rand_int__ >/dev/null 2>&1 &
PIDS+=($!)
sleep 3
commands() { redis-cli -p "$PORT" info stats | tr -d '\r' | awk -F: '/^total_commands_processed:/ {print $2}'; }
server_cpu() { sed 's/.*) //' "/proc/$SERVER_PID/stat" | awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($12 + $13) / hz}'; }
window() {
    local label=$1; shift
    local c0 t0 s0 c1 t1 s1 runs=0 tool_s=0
    c0=$(commands); s0=$(server_cpu); t0=$(date +%s.%N)
    if [ $# -eq 0 ]; then
        sleep "$SECONDS_PER"
    else
        while [ "$(echo "$(date +%s.%N) - $t0 < $SECONDS_PER" | bc)" = 1 ]; do
            local r0; r0=$(date +%s.%N)
            "$@" >/dev/null 2>&1 || [ $? -le 1 ]
            tool_s=$(echo "$tool_s + $(date +%s.%N) - $r0" | bc)
            runs=$((runs + 1))
        done
    fi
    c1=$(commands); s1=$(server_cpu); t1=$(date +%s.%N)
    local rate cpu
    rate=$(echo "($c1 - $c0) / ($t1 - $t0)" | bc -l)
    cpu=$(echo "($s1 - $s0) * 1000000 / ($c1 - $c0)" | bc -l)
    if [ "$runs" -gt 0 ]; then
        printf '%-26s %8.0f req/s  server %5.1f us CPU/req  tool: %d runs, %.2f s each\n' "$label" "$rate" "$cpu" "$runs" \
            "$(echo "$tool_s / $runs" | bc -l)"
    else
        printf '%-26s %8.0f req/s  server %5.1f us CPU/req\n' "$label" "$rate" "$cpu"
    fi
}
echo "velo serve on the directory; SET + GET load (2 x $CLIENTS connections, -P $PIPE); windows of ${SECONDS_PER} s; load: $(cut -d' ' -f1-3 /proc/loadavg)"
window "alone"
# The tools' --nice defaults to 19; these windows run them at the normal priority (a build without --nice:
# NICE_FLAG= ), then at their default.
NICE_FLAG=${NICE_FLAG---nice 0}
# shellcheck disable=SC2086
window "during check (nice 0)" "$VELO" check --dir "$WORK/data" $NICE_FLAG
window "alone"
# shellcheck disable=SC2086
window "during bigkeys (nice 0)" "$VELO" bigkeys --dir "$WORK/data" $NICE_FLAG
if [ "${NICE:-1}" != 0 ]; then
    window "alone"
    window "during check (nice 19)" nice -n 19 "$VELO" check --dir "$WORK/data"
    window "alone"
    window "during bigkeys (nice 19)" nice -n 19 "$VELO" bigkeys --dir "$WORK/data"
fi
window "alone"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
