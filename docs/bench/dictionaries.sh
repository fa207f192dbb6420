#!/usr/bin/env bash
# Trained dictionaries (issue 13): disk size and cold GET rate of N JSON-like records in three key
# families (user profiles, events, sessions; ~70-250 bytes, realistic field names, repeated values),
# stored by redis-server (RDB and RSS), by velo without dictionaries and by velo with one trained
# dictionary per family (trained by `velo train-dict` on the first load, installed into a fresh directory
# before the second load). "Cold" GET: a restarted server with 1 MiB page and value caches, so nearly
# every GET decodes its value from the files (the OS page cache stays warm: no disk reads are timed).
#
# Usage: docs/bench/dictionaries.sh [KEYS] [VELO_BINARY]    (default 300000 keys; figures: docs/performance.md)
set -euo pipefail
cd "$(dirname "$0")/../.."
. docs/bench/common.sh
require_tools redis-server redis-cli redis-benchmark python3
KEYS=${1:-300000}
use_velo "${2:-}"

# Every key is family:<12-digit id> so that redis-benchmark's __rand_int__ hits existing keys.
python3 - "$KEYS" >"$BENCH_WORK/data.resp" <<'PY'
import random, sys
n = int(sys.argv[1]); r = random.Random(7)
first = ["Anna","Ben","Chen","Dara","Emil","Fatima","Goran","Hana","Ivan","Jun","Kofi","Lena","Mateo","Nora","Omar","Priya"]
last = ["Smith","Garcia","Kim","Müller","Rossi","Tanaka","Okafor","Silva","Novak","Dubois","Cohen","Singh"]
cities = ["Berlin","Lisbon","Austin","Osaka","Nairobi","Lima","Oslo","Pune","Quebec","Seoul"]
pages = ["/","/home","/search","/cart","/checkout","/product/{}","/account","/help"]
agents = ["Mozilla/5.0 (X11; Linux x86_64)","Mozilla/5.0 (Macintosh; Intel Mac OS X 13_4)","Mozilla/5.0 (iPhone; CPU iPhone OS 16_5)"]
def cmd(key, value):
    k, v = key.encode(), value.encode()
    return b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(v), v)
out = sys.stdout.buffer
for i in range(n):
    kind = i % 3
    ts = 1700000000 + r.randrange(30_000_000)
    if kind == 0:
        f, l = r.choice(first), r.choice(last)
        v = '{"name":"%s %s","email":"%s.%s%d@example.com","city":"%s","plan":"%s","created":%d,"verified":%s}' % (
            f, l, f.lower(), l.lower(), r.randrange(1000), r.choice(cities), r.choice(["free","pro","team"]), ts,
            r.choice(["true","false"]))
        out.write(cmd("user:%012d" % i, v))
    elif kind == 1:
        v = '{"type":"%s","user":%d,"page":"%s","ts":%d,"ms":%d}' % (
            r.choice(["view","click","scroll","purchase"]), r.randrange(n), r.choice(pages).format(r.randrange(5000)),
            ts, r.randrange(2000))
        out.write(cmd("event:%012d" % i, v))
    else:
        v = '{"user":%d,"ip":"10.%d.%d.%d","agent":"%s","started":%d,"ttl":%d,"csrf":"%032x"}' % (
            r.randrange(n), r.randrange(256), r.randrange(256), r.randrange(256), r.choice(agents), ts,
            r.choice([900,1800,3600]), r.getrandbits(128))
        out.write(cmd("session:%012d" % i, v))
PY
RAW=$(python3 -c "import sys
d=open(sys.argv[1],'rb').read().split(b'\r\n')
print(sum(len(d[i]) for i in range(6,len(d),7)))" "$BENCH_WORK/data.resp")
echo "keys: $KEYS, raw value bytes: $RAW"

load() { redis-cli -p "$1" --pipe <"$BENCH_WORK/data.resp" >/dev/null; }
disk() { du -sb --exclude=LOCK "$1" | cut -f1; }
cold_get() { # port -> GETs per second, 8 clients, no pipelining, random keys of all families
    local total=0
    for family in user event session; do
        local rps
        rps=$(redis-benchmark -p "$1" -c 8 -n 60000 -r "$KEYS" -q GET "$family:__rand_int__" | tail -1 |
            sed 's/.*: \([0-9.]*\) requests.*/\1/')
        total=$(python3 -c "print($total + $rps / 3)")
    done
    printf '%.0f' "$total"
}
velo_stop() { # port: SHUTDOWN, then wait until the process has exited (its checkpoint done)
    redis-cli -p "$1" SHUTDOWN >/dev/null 2>&1 || true
    wait "${BENCH_PIDS[-1]}" 2>/dev/null || true
}
velo_serve() { # port dir extra...
    local port=$1 dir=$2; shift 2
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

# redis-server
port=$(free_port)
mkdir -p "$BENCH_WORK/redis"
redis-server --port "$port" --dir "$BENCH_WORK/redis" --save "" --appendonly no --logfile "$BENCH_WORK/redis.log" &
BENCH_PIDS+=($!)
wait_ready "$port"
load "$port"
redis-cli -p "$port" SAVE >/dev/null
RDB=$(stat -c %s "$BENCH_WORK/redis/dump.rdb")
RSS=$(redis-cli -p "$port" INFO memory | awk -F: '/^used_memory_rss:/{print $2}' | tr -d '\r')
REDIS_GET=$(cold_get "$port")
redis-cli -p "$port" SHUTDOWN NOSAVE >/dev/null 2>&1 || true

# velo, no dictionaries
port=$(free_port)
velo_serve "$port" "$BENCH_WORK/plain"
redis-cli -p "$port" CONFIG SET velo-dict-training no >/dev/null
load "$port"
velo_stop "$port"
PLAIN=$(disk "$BENCH_WORK/plain")
port=$(free_port)
velo_serve "$port" "$BENCH_WORK/plain" --page-cache 1mb --value-cache 1mb
redis-cli -p "$port" CONFIG SET velo-dict-training no >/dev/null
PLAIN_GET=$(cold_get "$port")
velo_stop "$port"

# Dictionaries trained on the first load, installed into a fresh directory, then the same data loaded.
"$VELO" train-dict --dir "$BENCH_WORK/plain" --all --samples 20000 --size 16384 | tee "$BENCH_WORK/train.txt"
mkdir -p "$BENCH_WORK/dict"
"$VELO" train-dict --dir "$BENCH_WORK/plain" --all --samples 20000 --size 16384 --install --json >/dev/null
cp "$BENCH_WORK"/plain/dict-*.vdct "$BENCH_WORK/dict/"
DICTS=$(cat "$BENCH_WORK"/dict/dict-*.vdct | wc -c)
port=$(free_port)
velo_serve "$port" "$BENCH_WORK/dict"
redis-cli -p "$port" CONFIG SET velo-dict-training no >/dev/null
load "$port"
velo_stop "$port"
DICT=$(disk "$BENCH_WORK/dict")
port=$(free_port)
velo_serve "$port" "$BENCH_WORK/dict" --page-cache 1mb --value-cache 1mb
redis-cli -p "$port" CONFIG SET velo-dict-training no >/dev/null
DICT_GET=$(cold_get "$port")
velo_stop "$port"

ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
echo
echo "| store | bytes | × raw values | × redis RDB | GET/s (cold caches) |"
echo "|---|---:|---:|---:|---:|"
echo "| raw value bytes | $RAW | 1.00 | $(ratio "$RAW" "$RDB") | |"
echo "| redis-server RDB | $RDB | $(ratio "$RDB" "$RAW") | 1.00 | $REDIS_GET (in RAM) |"
echo "| redis-server RSS | $RSS | $(ratio "$RSS" "$RAW") | $(ratio "$RSS" "$RDB") | |"
echo "| velo, no dictionaries | $PLAIN | $(ratio "$PLAIN" "$RAW") | $(ratio "$PLAIN" "$RDB") | $PLAIN_GET |"
echo "| velo, trained dictionaries ($DICTS B of them) | $DICT | $(ratio "$DICT" "$RAW") | $(ratio "$DICT" "$RDB") | $DICT_GET |"
