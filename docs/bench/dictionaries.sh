#!/usr/bin/env bash
# Trained dictionaries (issue 13): bytes on disk and cold GET rate of N JSON-like values in three key
# families (user profiles, events, sessions; 100 B to 2 KB, most small, a tail to 2 KB; generator:
# docs/bench/dict_values.py), as the issue's benchmark asks. Stores compared, each loaded with the same
# `redis-cli --pipe` stream of SETs:
#   - redis-server 7.0: RDB after SAVE, and RSS;
#   - velo with training off (no dictionaries);
#   - velo at its defaults (velo-dict-training yes, velo-dict-min-gain 10): the server samples while the
#     data is loaded and its trainer decides per family (VELO FAMILIES printed after the load);
#   - velo with one dictionary per family trained by `velo train-dict` on the no-dictionary directory and
#     installed into a fresh directory before the same load (every value written with its dictionary).
# For each velo directory: bytes per file kind (bucket and overflow pages, chunk files, big values, the
# rest). "Cold" GET: a restarted server with 1 MiB page and value caches, so nearly every GET decodes its
# value from the files (the OS page cache stays warm: no disk reads are timed). CPU: utime+stime of the
# server process (/proc/PID/stat) over the load and over the GETs, per key and per request: robust to
# other load on the machine, unlike the rates.
#
# Usage: docs/bench/dictionaries.sh [KEYS] [VELO_BINARY]   (default 500000 keys; the issue's figure is
# 2000000: about 0.7 GB of SETs, and each store up to the same again under $TMPDIR; figures:
# docs/performance.md)
set -euo pipefail
cd "$(dirname "$0")/../.."
. docs/bench/common.sh
require_tools redis-server redis-cli redis-benchmark python3
KEYS=${1:-500000}
use_velo "${2:-}"
TICK=$(getconf CLK_TCK)
PER_FAMILY=$((KEYS / 3))
GET_REQUESTS=${GET_REQUESTS:-60000}

python3 docs/bench/dict_values.py "$KEYS" >"$BENCH_WORK/data.resp"
python3 - "$BENCH_WORK/data.resp" <<'PY' | tee "$BENCH_WORK/raw.txt"
import sys, collections
d = open(sys.argv[1], "rb").read().split(b"\r\n")
fam = collections.defaultdict(list)
for i in range(6, len(d), 7):
    fam[d[i - 2].split(b":")[0].decode()].append(len(d[i]))
for f, l in sorted(fam.items()):
    l.sort()
    print(f"family {f}: {len(l)} values, {sum(l)} bytes, min {l[0]}, median {l[len(l) // 2]}, "
          f"p90 {l[len(l) * 9 // 10]}, max {l[-1]}, mean {sum(l) / len(l):.0f}")
print("RAW", sum(sum(l) for l in fam.values()))
PY
RAW=$(awk '/^RAW /{print $2}' "$BENCH_WORK/raw.txt")

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; } # clock ticks of user + system time
us_per() { python3 -c "print(f'{($2 - $1) * 1e6 / $TICK / $3:.2f}')"; } # before after count -> µs each
load() { redis-cli -p "$1" --pipe <"$BENCH_WORK/data.resp" >/dev/null; }
disk() { du -sb --exclude=LOCK --exclude=ADDRESS "$1" | cut -f1; }
breakdown() { # dir -> bytes per kind of file
    find "$1" -type f -printf '%f %s\n' | awk '
        $1 == "buckets" { b += $2; next } $1 == "overflow" { o += $2; next }
        $1 ~ /^chunk-/ { c += $2; next } $1 ~ /^big-/ { g += $2; next } $1 ~ /^dict-/ { d += $2; next }
        $1 == "LOCK" || $1 == "ADDRESS" { next } { r += $2 }
        END { printf "buckets %d, overflow %d, chunks %d, big values %d, dictionaries %d, other %d\n", b, o, c, g, d, r }'
}
cold_get() { # port pid -> "GETs/s CPU-µs/GET": 8 clients, no pipelining, random existing keys of each family
    local total=0 before after rps
    before=$(cpu "$2")
    for family in user event session; do
        rps=$(redis-benchmark -p "$1" -c 8 -n "$GET_REQUESTS" -r "$PER_FAMILY" -q GET "$family:__rand_int__" |
            tail -1 | sed 's/.*: \([0-9.]*\) requests.*/\1/')
        total=$(python3 -c "print($total + $rps / 3)")
    done
    after=$(cpu "$2")
    printf '%.0f %s' "$total" "$(us_per "$before" "$after" $((3 * GET_REQUESTS)))"
}
velo_stop() { # port: SHUTDOWN, then wait until the process has exited (its checkpoint done)
    redis-cli -p "$1" SHUTDOWN >/dev/null 2>&1 || true
    wait "${BENCH_PIDS[-1]}" 2>/dev/null || true
}
velo_serve() { # port dir extra...
    local port=$1 dir=$2
    shift 2
    "$VELO" serve --port "$port" --dir "$dir" --fsync everysec --log-level warn "$@" >/dev/null 2>>"$BENCH_WORK/velo.log" &
    BENCH_PIDS+=($!)
    for _ in $(seq 600); do # up to a minute: the machine may be busy
        redis-cli -p "$port" PING >/dev/null 2>&1 && return
        sleep 0.1
    done
    echo "velo did not start on port $port:" >&2
    cat "$BENCH_WORK/velo.log" >&2
    exit 1
}
VELO_PID=
velo_load() { # dir [name value]... : CONFIG SET the pairs, load, save VELO FAMILIES, stop; sets LOAD_CPU
    local dir=$1 port before
    shift
    port=$(free_port)
    velo_serve "$port" "$dir"
    VELO_PID=${BENCH_PIDS[-1]}
    while [ $# -gt 0 ]; do
        redis-cli -p "$port" CONFIG SET "$1" "$2" >/dev/null
        shift 2
    done
    before=$(cpu "$VELO_PID")
    load "$port"
    LOAD_CPU=$(us_per "$before" "$(cpu "$VELO_PID")" "$KEYS")
    sleep 2 # the trainer looks for ready families every half second
    redis-cli -p "$port" VELO FAMILIES >"$dir.families" 2>&1 || true
    velo_stop "$port"
}
velo_cold() { # dir: cold_get of a restarted server with small caches; sets GET_RATE GET_CPU
    local port
    port=$(free_port)
    velo_serve "$port" "$1" --page-cache 1mb --value-cache 1mb
    redis-cli -p "$port" CONFIG SET velo-dict-training no >/dev/null
    read -r GET_RATE GET_CPU <<<"$(cold_get "$port" "${BENCH_PIDS[-1]}")"
    velo_stop "$port"
}

# redis-server
port=$(free_port)
mkdir -p "$BENCH_WORK/redis"
redis-server --port "$port" --dir "$BENCH_WORK/redis" --save "" --appendonly no --logfile "$BENCH_WORK/redis.log" &
BENCH_PIDS+=($!)
wait_ready "$port"
before=$(cpu "${BENCH_PIDS[-1]}")
load "$port"
REDIS_LOAD_CPU=$(us_per "$before" "$(cpu "${BENCH_PIDS[-1]}")" "$KEYS")
redis-cli -p "$port" SAVE >/dev/null
RDB=$(stat -c %s "$BENCH_WORK/redis/dump.rdb")
RSS=$(redis-cli -p "$port" INFO memory | awk -F: '/^used_memory_rss:/{print $2}' | tr -d '\r')
read -r REDIS_GET REDIS_GET_CPU <<<"$(cold_get "$port" "${BENCH_PIDS[-1]}")"
redis-cli -p "$port" SHUTDOWN NOSAVE >/dev/null 2>&1 || true
rm -f "$BENCH_WORK/redis/dump.rdb"

# velo, no dictionaries
velo_load "$BENCH_WORK/plain" velo-dict-training no
PLAIN=$(disk "$BENCH_WORK/plain") PLAIN_LOAD_CPU=$LOAD_CPU PLAIN_PARTS=$(breakdown "$BENCH_WORK/plain")
velo_cold "$BENCH_WORK/plain"
PLAIN_GET=$GET_RATE PLAIN_GET_CPU=$GET_CPU

# velo at its defaults: training on while loading, the trainer's own decision per family
velo_load "$BENCH_WORK/default"
DEFAULT=$(disk "$BENCH_WORK/default") DEFAULT_LOAD_CPU=$LOAD_CPU DEFAULT_PARTS=$(breakdown "$BENCH_WORK/default")
rm -rf "$BENCH_WORK/default"

# Dictionaries trained on the first load, installed into a fresh directory, then the same data loaded.
"$VELO" train-dict --dir "$BENCH_WORK/plain" --all --samples 20000 --size 16384 | tee "$BENCH_WORK/train.txt"
mkdir -p "$BENCH_WORK/dict"
"$VELO" train-dict --dir "$BENCH_WORK/plain" --all --samples 20000 --size 16384 --install --json >/dev/null
mv "$BENCH_WORK"/plain/dict-*.vdct "$BENCH_WORK/dict/"
rm -rf "$BENCH_WORK/plain"
DICTS=$(cat "$BENCH_WORK"/dict/dict-*.vdct | wc -c)
velo_load "$BENCH_WORK/dict" velo-dict-training no
DICT=$(disk "$BENCH_WORK/dict") DICT_LOAD_CPU=$LOAD_CPU DICT_PARTS=$(breakdown "$BENCH_WORK/dict")
velo_cold "$BENCH_WORK/dict"
DICT_GET=$GET_RATE DICT_GET_CPU=$GET_CPU
rm -rf "$BENCH_WORK/dict"

ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
echo
echo "velo at defaults: what the server's trainer decided (VELO FAMILIES after the load):"
tr -d '\r' <"$BENCH_WORK/default.families" | paste -sd' '
echo
echo "velo, no dictionaries: $PLAIN_PARTS"
echo "velo at defaults: $DEFAULT_PARTS"
echo "velo, trained dictionaries: $DICT_PARTS"
echo
echo "| store | bytes | × raw values | × redis RDB | × redis RSS | load CPU µs/key | GET/s (cold caches) | GET CPU µs/req |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
echo "| raw value bytes | $RAW | 1.00 | $(ratio "$RAW" "$RDB") | $(ratio "$RAW" "$RSS") | | | |"
echo "| redis-server RDB | $RDB | $(ratio "$RDB" "$RAW") | 1.00 | $(ratio "$RDB" "$RSS") | $REDIS_LOAD_CPU | $REDIS_GET (in RAM) | $REDIS_GET_CPU |"
echo "| redis-server RSS | $RSS | $(ratio "$RSS" "$RAW") | $(ratio "$RSS" "$RDB") | 1.00 | | | |"
echo "| velo, no dictionaries | $PLAIN | $(ratio "$PLAIN" "$RAW") | $(ratio "$PLAIN" "$RDB") | $(ratio "$PLAIN" "$RSS") | $PLAIN_LOAD_CPU | $PLAIN_GET | $PLAIN_GET_CPU |"
echo "| velo at defaults (server trains while loading) | $DEFAULT | $(ratio "$DEFAULT" "$RAW") | $(ratio "$DEFAULT" "$RDB") | $(ratio "$DEFAULT" "$RSS") | $DEFAULT_LOAD_CPU | | |"
echo "| velo, trained dictionaries ($DICTS B of them) | $DICT | $(ratio "$DICT" "$RAW") | $(ratio "$DICT" "$RDB") | $(ratio "$DICT" "$RSS") | $DICT_LOAD_CPU | $DICT_GET | $DICT_GET_CPU |"
