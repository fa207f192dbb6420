#!/usr/bin/env bash
# Focused measurement of the element-level collection commands on large (split) collections: LINSERT,
# LREM and LPOS on a 100k-item list, GEOADD/GEOPOS/GEODIST on a 100k-member geo set, SRANDMEMBER,
# HRANDFIELD and ZRANDMEMBER with a small count, SMOVE and SINTERCARD LIMIT on 100k-member sets.
# Each line is redis-benchmark's requests per second for one command against one `velo serve`.
#
# Usage: docs/bench/elements.sh [path/to/velo | redis]   (default: a release build of this tree; `redis`
#        runs the same against redis-server --appendonly yes for reference; REQUESTS, CLIENTS and SIZE
#        override the defaults). Run it alone: the machine has two cores.
set -euo pipefail
cd "$(dirname "$0")/../.."

REQUESTS=${REQUESTS:-2000}
CLIENTS=${CLIENTS:-10}
SIZE=${SIZE:-100000}
. docs/bench/common.sh
require_tools redis-server redis-benchmark redis-cli
PORT=$(free_port)
if [ "${1:-}" = redis ]; then
    start_redis "$PORT"
else
    use_velo "${1:-}"
    start_velo "$PORT"
fi

echo "loading $SIZE-element list, geo set, sets, hash and sorted set..." >&2
awk -v n="$SIZE" 'BEGIN {
    for (i = 0; i < n; i += 500) {
        l = "RPUSH L"; g = "GEOADD geo"; s = "SADD s"; t = "SADD t"; h = "HSET h"; z = "ZADD z"
        for (j = i; j < i + 500 && j < n; j++) {
            l = l sprintf(" p%d", j)
            g = g sprintf(" %.5f %.5f m%d", (j * 7919 % 35900) / 100 - 179.5, (j * 104729 % 16900) / 100 - 84.5, j)
            s = s sprintf(" m%d", j); t = t sprintf(" m%d", j * 2); h = h sprintf(" f%d v", j); z = z sprintf(" %d m%d", j, j)
        }
        print l; print g; print s; print t; print h; print z
    }
}' | redis-cli -p "$PORT" >/dev/null
echo "  LLEN L = $(redis-cli -p "$PORT" LLEN L), ZCARD geo = $(redis-cli -p "$PORT" ZCARD geo)" >&2

# Prints "name rps" for one command (redis-benchmark's __rand_int__ ranges over SIZE).
bench() {
    local name=$1
    shift
    local rps
    rps=$(redis-benchmark -p "$PORT" -n "$REQUESTS" -c "$CLIENTS" -r "$SIZE" --csv -q "$@" \
        | awk -F'","' 'NR==2 { gsub(/"/, "", $2); print $2 }')
    printf "%-34s %12s\n" "$name" "$rps"
}

printf "%-34s %12s\n" command rps
bench "LINSERT (pivot at 1000)" LINSERT L BEFORE p1000 x
bench "LREM 1 (first match near 1000)" LREM L 1 x
bench "LPOS (item 1000)" LPOS L p1000
bench "LPOS RANK -1 (item 99000)" LPOS L p99000 RANK -1
bench "LSET middle" LSET L 50000 y
bench "GEOADD (update)" GEOADD geo 10.5 20.5 m__rand_int__
bench "GEOPOS" GEOPOS geo m__rand_int__
bench "GEODIST" GEODIST geo m1 m__rand_int__ km
bench "GEOHASH" GEOHASH geo m__rand_int__
bench "GEOSEARCH 50 km" GEOSEARCH geo FROMLONLAT 0 0 BYRADIUS 50 km
bench "SRANDMEMBER 10" SRANDMEMBER s 10
bench "HRANDFIELD 10" HRANDFIELD h 10
bench "ZRANDMEMBER 10" ZRANDMEMBER z 10
bench "SPOP 5" SPOP s 5
bench "SMOVE" SMOVE t s m__rand_int__
bench "SINTERCARD LIMIT 10" SINTERCARD 2 s t LIMIT 10
