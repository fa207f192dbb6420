#!/usr/bin/env bash
# Offline RDB load benchmark for `velo rdb-restore` (issue 10).
#
#   docs/bench/rdb_restore.sh [KEYS]     # default 10000000 (10M); e.g. 200000 for a quick sanity run
#   VELO=path/to/velo docs/bench/rdb_restore.sh ...   # measure that binary instead of building one
#
# 1. redis-server writes an RDB of KEYS keys after `DEBUG POPULATE KEYS key:0000 100` (keys key:0000:N,
#    about 15 bytes; 100-byte values), then SAVE.
# 2. redis-server loads that RDB at start-up: its own "DB loaded from disk" time, its CPU time by then
#    (utime + stime from /proc/PID/stat) and its peak RSS.
# 3. `velo rdb-restore` loads it into an empty data directory (the engine's bulk loader): wall time, CPU
#    time (user + sys) and peak RSS via /usr/bin/time -v.
# 4. redis-server SAVEs the loaded data again (its SAVE time from the log) and `velo rdb-dump` writes the
#    restored directory back to an RDB file (wall, CPU, peak RSS).
# Targets (issue 10): velo's time <= 0.5x redis-server's load time; RSS <= 500 MB; rdb-dump <= 1.0x SAVE. State the machine's
# load (uptime, printed before and after) with the figures: both runs share the cores with whatever else
# runs, so the wall-time ratio moves with the load; the CPU times do much less.
set -euo pipefail
KEYS=${1:-10000000}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rdb_restore.XXXXXX")
trap 'redis-cli -p "${PORT:-0}" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
cd "$ROOT"
if [ -z "${VELO:-}" ]; then
    cargo build --release --quiet --bin velo
    VELO=$ROOT/target/release/velo
fi
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

echo "redis-server: DEBUG POPULATE $KEYS, SAVE..."
redis-server --port "$PORT" --save '' --appendonly no --dir "$WORK" --enable-debug-command yes \
    --logfile "$WORK/populate.log" &
sleep 1
redis-cli -p "$PORT" DEBUG POPULATE "$KEYS" key:0000 100 >/dev/null
redis-cli -p "$PORT" SAVE >/dev/null
redis-cli -p "$PORT" shutdown nosave >/dev/null || true
sleep 1
ls -l "$WORK/dump.rdb"

uptime
echo "redis-server loading it at start-up..."
/usr/bin/time -v redis-server --port "$PORT" --save '' --appendonly no --dir "$WORK" \
    --logfile "$WORK/load.log" 2>"$WORK/redis.time" &
until grep -q "DB loaded from disk" "$WORK/load.log" 2>/dev/null; do sleep 0.2; done
# CPU time so far (the load; the idle server adds next to nothing): utime and stime, fields 14 and 15
# of /proc/PID/stat (12 and 13 once "pid (comm) " is cut off, as comm may hold spaces).
REDIS_PID=$(redis-cli -p "$PORT" info server | tr -d '\r' | awk -F: '/^process_id:/ {print $2}')
redis_cpu=$(sed 's/.*) //' "/proc/$REDIS_PID/stat" | awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($12 + $13) / hz}')
save_start=$(date +%s.%N)
redis-cli -p "$PORT" SAVE >/dev/null
save_s=$(echo "$(date +%s.%N) - $save_start" | bc)
redis-cli -p "$PORT" shutdown nosave >/dev/null || true
sleep 1
redis_s=$(grep -o "DB loaded from disk: [0-9.]*" "$WORK/load.log" | awk '{print $5}')
echo "redis-server load: ${redis_s}s, CPU ${redis_cpu}s, $(grep 'Maximum resident' "$WORK/redis.time")"

echo "velo rdb-restore into an empty directory..."
start=$(date +%s.%N)
/usr/bin/time -v "$VELO" rdb-restore "$WORK/dump.rdb" --dir "$WORK/data" 2>"$WORK/velo.time" >/dev/null || true
velo_s=$(echo "$(date +%s.%N) - $start" | bc)
velo_cpu=$(awk -F': ' '/User time|System time/ {sum += $2} END {printf "%.2f", sum}' "$WORK/velo.time")
echo "velo rdb-restore: ${velo_s}s, CPU ${velo_cpu}s, $(grep 'Maximum resident' "$WORK/velo.time")"
echo "ratio (velo / redis-server load): wall $(echo "scale=2; $velo_s / $redis_s" | bc)," \
    "CPU $(echo "scale=2; $velo_cpu / $redis_cpu" | bc)"
du -sh "$WORK/data"

echo "velo rdb-dump of the restored directory..."
start=$(date +%s.%N)
/usr/bin/time -v "$VELO" rdb-dump --dir "$WORK/data" -o "$WORK/back.rdb" 2>"$WORK/dump.time" >/dev/null
dump_s=$(echo "$(date +%s.%N) - $start" | bc)
dump_cpu=$(awk -F': ' '/User time|System time/ {sum += $2} END {printf "%.2f", sum}' "$WORK/dump.time")
echo "redis-server SAVE: ${save_s}s; velo rdb-dump: ${dump_s}s, CPU ${dump_cpu}s," \
    "$(grep 'Maximum resident' "$WORK/dump.time"); ratio $(echo "scale=2; $dump_s / $save_s" | bc)"
ls -l "$WORK/dump.rdb" "$WORK/back.rdb"
uptime
