#!/usr/bin/env bash
# Load CPU per key of two velo binaries, alternating: each round loads the same N SETs of the issue-13
# value mix (docs/bench/dict_values.py: families event/session/user, 100 B-2 KB) with `redis-cli --pipe`
# into a fresh directory (training off) under each binary, and prints the server's utime+stime over the
# load per key (/proc/PID/stat) and the bytes of the directory. CPU per key is robust to other load on
# the machine, unlike rates; alternating the binaries spreads the remaining noise over both.
#
# Usage: docs/bench/dict_load_cpu_ab.sh BASE_BINARY BRANCH_BINARY [KEYS] [ROUNDS]   (300000 keys, 5 rounds)
set -euo pipefail
cd "$(dirname "$0")/../.."
. docs/bench/common.sh
require_tools redis-cli python3
BASE=$1 BRANCH=$2 KEYS=${3:-300000} ROUNDS=${4:-5}
TICK=$(getconf CLK_TCK)
python3 docs/bench/dict_values.py "$KEYS" >"$BENCH_WORK/data.resp"
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for round in $(seq "$ROUNDS"); do
    for name in base branch; do
        binary=$BASE
        [ "$name" = branch ] && binary=$BRANCH
        dir="$BENCH_WORK/dir-$name"
        rm -rf "$dir"
        port=$(free_port)
        "$binary" serve --port "$port" --dir "$dir" --fsync everysec --log-level warn >/dev/null 2>&1 &
        BENCH_PIDS+=($!)
        pid=$!
        wait_ready "$port"
        redis-cli -p "$port" CONFIG SET velo-dict-training no >/dev/null
        before=$(cpu "$pid")
        redis-cli -p "$port" --pipe <"$BENCH_WORK/data.resp" >/dev/null
        after=$(cpu "$pid")
        redis-cli -p "$port" SHUTDOWN >/dev/null 2>&1 || true
        wait "$pid" 2>/dev/null || true
        us=$(python3 -c "print(f'{($after - $before) * 1e6 / $TICK / $KEYS:.2f}')")
        echo "round $round $name: load CPU $us µs/key, $(du -sb --exclude=LOCK --exclude=ADDRESS "$dir" | cut -f1) bytes, load average $(cut -d' ' -f1-3 /proc/loadavg)"
        rm -rf "$dir"
    done
done
