#!/usr/bin/env bash
# A/B of `velo rdb-dump` (issue 10's second figure) between builds, with redis-server's SAVE of the same data
# in the same run, all under `chrt -f 10` (a loaded machine then schedules the runs like an idle one).
#
#   docs/bench/rdb_dump_ab.sh KEYS ROUNDS VELO_BIN...    # e.g. 2000000 2 /tmp/velo-base target/release/velo
#
# 1. redis-server writes an RDB after `DEBUG POPULATE KEYS key:0000 100`; the first binary restores it into
#    an empty directory (`velo rdb-restore`: a bulk load, values in segments in the RDB's order).
# 2. redis-server loads the RDB. Each round runs `velo rdb-dump` of the directory with each binary in turn
#    (wall, CPU = user + sys, peak RSS via /usr/bin/time), then `SAVE` on redis-server (wall, and its CPU
#    from utime + stime in /proc/PID/stat before and after).
# Report the same-run wall ratio and the CPU per key of both; state the load (uptime, printed).
set -euo pipefail
KEYS=$1
ROUNDS=$2
shift 2
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rdb_dump_ab.XXXXXX")
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
trap 'redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
HZ=$(getconf CLK_TCK)
cpu() { sed 's/.*) //' "/proc/$1/stat" | awk -v hz="$HZ" '{printf "%.2f", ($12 + $13) / hz}'; }
# redis-server grows without bound on a mistaken huge count: cap its address space.
ulimit -v 8000000

redis-server --port "$PORT" --save '' --appendonly no --dir "$WORK" --enable-debug-command yes \
    --logfile "$WORK/populate.log" &
until redis-cli -p "$PORT" ping 2>/dev/null | grep -q PONG; do sleep 0.2; done
redis-cli -p "$PORT" DEBUG POPULATE "$KEYS" key:0000 100 >/dev/null
redis-cli -p "$PORT" SAVE >/dev/null
redis-cli -p "$PORT" shutdown nosave >/dev/null || true
sleep 1
"$1" rdb-restore "$WORK/dump.rdb" --dir "$WORK/data" >/dev/null

uptime
chrt -f 10 redis-server --port "$PORT" --save '' --appendonly no --dir "$WORK" --dbfilename dump.rdb \
    --logfile "$WORK/load.log" &
REDIS_PID=$!
until redis-cli -p "$PORT" ping 2>/dev/null | grep -q PONG; do sleep 0.2; done
for round in $(seq "$ROUNDS"); do
    for bin in "$@"; do
        /usr/bin/time -f "%e %U %S %M" -o "$WORK/time.txt" chrt -f 10 "$bin" rdb-dump --dir "$WORK/data" \
            -o "$WORK/back.rdb" >/dev/null 2>&1
        read -r wall user sys rss <"$WORK/time.txt"
        echo "round $round $bin: wall ${wall}s, CPU $(echo "$user + $sys" | bc)s (user $user, sys $sys), peak RSS ${rss} KB"
        rm -f "$WORK/back.rdb"
    done
    before=$(cpu "$REDIS_PID")
    start=$(date +%s.%N)
    redis-cli -p "$PORT" SAVE >/dev/null
    wall=$(echo "$(date +%s.%N) - $start" | bc)
    echo "round $round redis-server SAVE: wall ${wall}s, CPU $(echo "$(cpu "$REDIS_PID") - $before" | bc)s"
done
uptime
