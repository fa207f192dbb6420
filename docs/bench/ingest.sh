#!/usr/bin/env bash
# Bulk-load benchmark for `velo ingest-parquet` (issue 11).
#
#   docs/bench/ingest.sh [ROWS]        # default 10000000 (10M); use e.g. 200000 for a quick sanity run
#
# 1. Generates ROWS rows (16-byte keys, 100-byte values, snappy) with scripts/gen_parquet.rs.
# 2. Times `velo ingest-parquet` into an empty data directory (wall time, rows/s, peak RSS and CPU time via
#    /usr/bin/time; CPU seconds per 1M rows is the figure that a loaded machine does not distort).
# 3. For reference, loads the same rows into redis-server with `redis-cli --pipe` and prints the ratio.
# Targets (issue 11): >= 1M rows/s and RSS <= 500 MB on the 2-core machine.
set -euo pipefail
ROWS=${1:-10000000}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"; [ -n "${REDIS_PID:-}" ] && kill "$REDIS_PID" 2>/dev/null || true' EXIT
cd "$ROOT"
cargo build --release --quiet --bin velo --example gen_parquet
VELO=$ROOT/target/release/velo
echo "generating $ROWS rows..."
"$ROOT/target/release/examples/gen_parquet" "$WORK/in.parquet" "$ROWS" "$WORK/in.resp"
ls -l "$WORK/in.parquet"

echo "velo ingest-parquet (offline)..."
start=$(date +%s.%N)
/usr/bin/time -o "$WORK/time" -f "%M %U %S" "$VELO" ingest-parquet "$WORK/in.parquet" --dir "$WORK/data" \
    --key key --value value --quiet
velo_s=$(echo "$(date +%s.%N) - $start" | bc)
read -r rss_kb user_s sys_s < "$WORK/time"
echo "velo: ${velo_s}s, $(echo "$ROWS / $velo_s" | bc) rows/s, peak RSS ${rss_kb} KB"
# CPU time does not depend on how many other processes share the cores: the figure to compare across runs.
echo "velo CPU: ${user_s}s user + ${sys_s}s system = $(echo "scale=2; ($user_s + $sys_s) * 1000000 / $ROWS" | bc)s per 1M rows ($(uptime | sed 's/.*load/load/'))"

if command -v redis-server >/dev/null && command -v python3 >/dev/null; then
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    redis-server --port "$PORT" --save '' --appendonly no --dir "$WORK" >/dev/null &
    REDIS_PID=$!
    sleep 0.5
    start=$(date +%s.%N)
    redis-cli -p "$PORT" --pipe < "$WORK/in.resp" >/dev/null
    redis_s=$(echo "$(date +%s.%N) - $start" | bc)
    echo "redis-cli --pipe into redis-server: ${redis_s}s, $(echo "$ROWS / $redis_s" | bc) rows/s"
    echo "ratio (redis load time / velo offline time): $(echo "scale=2; $redis_s / $velo_s" | bc)"
fi
