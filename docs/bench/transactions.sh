#!/usr/bin/env bash
# What crash-atomic transactions (docs/recovery.md §"Transactions") cost: velo built from this tree
# against an earlier velo binary (BEFORE=path, optional) and redis-server (AOF everysec), same run:
# - SET -P 16 (single key: must be unchanged),
# - MSET of 10 keys in different slots, -P 16 (a cross-slot transaction per command),
# - MULTI + 10 SETs + EXEC, 20,000 transactions streamed through `redis-cli --pipe` (seconds).
#
# Usage: docs/bench/transactions.sh [BEFORE=target-old/release/velo] (REQUESTS, ROUNDS override)
set -euo pipefail
cd "$(dirname "$0")/../.."

REQUESTS=${REQUESTS:-1000000}
ROUNDS=${ROUNDS:-3}
TRANSACTIONS=${TRANSACTIONS:-20000}

. docs/bench/common.sh
require_tools redis-server redis-benchmark redis-cli bc
use_velo
declare -A PORTS
PORTS[velo]=$(free_port)
start_velo "${PORTS[velo]}"
if [ -n "${BEFORE:-}" ]; then
    PORTS[before]=$(free_port)
    VELO_AFTER=$VELO
    VELO=$BEFORE
    start_velo "${PORTS[before]}"
    VELO=$VELO_AFTER
fi
PORTS[redis]=$(free_port)
start_redis "${PORTS[redis]}"
SERVERS="velo ${BEFORE:+before} redis"

# The MULTI/EXEC stream: 20,000 transactions of 10 SETs each, keys spread over every slot.
python3 - "$TRANSACTIONS" >"$BENCH_WORK/multi.resp" <<'EOF'
import sys
out = sys.stdout.buffer
def cmd(*args):
    out.write(b"*%d\r\n" % len(args))
    for a in args:
        out.write(b"$%d\r\n%s\r\n" % (len(a), a))
for n in range(int(sys.argv[1])):
    cmd(b"MULTI")
    for i in range(10):
        cmd(b"SET", b"tx:%d:%d" % (n, i), b"v" * 64)
    cmd(b"EXEC")
EOF

rps() {
    redis-benchmark -p "$1" -n "$REQUESTS" -c 50 -P 16 -r 1000000 --csv -q "${@:2}" \
        | awk -F'","' 'NR==2 { gsub(/"/, "", $2); print $2 }'
}

printf "%-10s" figure; for s in $SERVERS; do printf "%12s" "$s"; done; echo
for round in $(seq "$ROUNDS"); do
    printf "%-10s" "set/s"; for s in $SERVERS; do printf "%12.0f" "$(rps "${PORTS[$s]}" -t set -d 256)"; done; echo
    printf "%-10s" "mset/s"; for s in $SERVERS; do printf "%12.0f" "$(rps "${PORTS[$s]}" -t mset)"; done; echo
    printf "%-10s" "multi s"
    for s in $SERVERS; do
        start=$(date +%s.%N)
        redis-cli -p "${PORTS[$s]}" --pipe <"$BENCH_WORK/multi.resp" >/dev/null
        printf "%12.2f" "$(echo "$(date +%s.%N) - $start" | bc -l)"
    done
    echo
done
