#!/usr/bin/env bash
# Trained dictionaries (issue 13): request p99 with and without training running, in the same run,
# alternating. A background writer (2 clients) writes JSON values with random numbers into 100 key
# families that are new in every phase. "On": velo-dict-training yes, velo-dict-min-samples 100 and a
# negative velo-dict-min-gain, so that the trainer trains and installs one dictionary per family (about
# 100 per phase) while the measured GET/SET (8 clients, 100-byte values, random keys) run; "off": training
# off, the same writer.
#
# Usage: docs/bench/dict-training-p99.sh [VELO_BINARY] [ROUNDS]    (figures: docs/performance.md)
set -euo pipefail
cd "$(dirname "$0")/../.."
. docs/bench/common.sh
require_tools redis-server redis-cli redis-benchmark
use_velo "${1:-}"
ROUNDS=${2:-2}
PORT=$(free_port)
start_velo "$PORT"
VALUE='{"name":"Anna Smith","email":"anna.smith__rand_int__@example.com","city":"Lisbon","plan":"pro","created":__rand_int__,"verified":true}'
p99() { # test -> "rps p99_ms"
    redis-benchmark -p "$PORT" -c 8 -n 40000 -r 100000 -d 100 -t "$1" --csv 2>/dev/null | tail -1 |
        awk -F'"' '{print $4, $14}'
}
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "mode,test,rps,p99_ms"
for round in $(seq "$ROUNDS"); do
    for mode in off on; do
        if [ "$mode" = on ]; then
            redis-cli -p "$PORT" CONFIG SET velo-dict-training yes velo-dict-min-samples 100 \
                velo-dict-min-gain -400 velo-dict-size 4096 >/dev/null
        else
            redis-cli -p "$PORT" CONFIG SET velo-dict-training no >/dev/null
        fi
        redis-benchmark -p "$PORT" -c 2 -n 100000000 -r 100 -q SET "r$round$mode.f__rand_int__:x" "$VALUE" >/dev/null 2>&1 &
        writer=$!
        sleep 0.5
        for t in set get; do
            echo "$mode,$t,$(p99 "$t" | tr ' ' ',')"
        done
        echo "  after this phase: $(redis-cli -p "$PORT" INFO velo | grep -E '^dict_(trained|rejected|failed):' | tr -d '\r' | tr '\n' ' ')"
        kill "$writer"
        wait "$writer" 2>/dev/null || true
    done
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
