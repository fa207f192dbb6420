#!/usr/bin/env bash
# Offline tools benchmark (issue 12): `velo check` and `velo bigkeys` on a data directory of ROWS keys
# (16-byte keys, 100-byte values), built with `velo ingest-parquet` from scripts/gen_parquet.rs output.
#
#   docs/bench/tools.sh [ROWS] [WORK]     # defaults: 10000000 (10M) keys, a fresh temporary directory
#
# Reports per tool: wall time, user+system CPU time, MB/s of data directory (its size on disk / wall
# time, and / CPU time, which is what a quiet machine would show per core), peak RSS (/usr/bin/time -v).
# Runs each tool twice: the first run warms the page cache, the second is the one reported. With
# COLD=1 the data directory's files (only they: the machine may be shared) are evicted from the page
# cache (posix_fadvise DONTNEED, python3) before a third, cold, run of `velo check`.
# Targets (issue 12): >= 1 GB/s of data checked with a warm cache, RSS <= 200 MB.
set -euo pipefail
ROWS=${1:-10000000}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${2:-$(mktemp -d)}
KEEP=${KEEP:-}
mkdir -p "$WORK"
[ -z "$KEEP" ] && trap 'rm -rf "$WORK/data" "$WORK/in.parquet"' EXIT
cd "$ROOT"
cargo build --release --quiet --bin velo --example gen_parquet
VELO=$ROOT/target/release/velo
if [ ! -d "$WORK/data" ]; then
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
