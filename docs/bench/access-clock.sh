#!/bin/bash
# Access-clock cost (docs/performance.md, "Access clock"): CPU per GET/SET request of one server.
# usage: access-clock.sh LABEL BINARY|redis PORT
label=$1; bin=$2; port=$3
dir=${TMPDIR:-/tmp}/velo-access-bench-$label-$port; rm -rf $dir; mkdir -p $dir
if [ "$bin" = redis ]; then
  redis-server --port $port --save "" --appendonly yes --appendfsync everysec --dir $dir >/dev/null 2>&1 & pid=$!
else
  $bin serve --port $port --dir $dir --log-level warn >/dev/null 2>&1 & pid=$!
fi
for i in $(seq 50); do redis-cli -p $port ping >/dev/null 2>&1 && break; sleep 0.2; done
tick=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' /proc/$pid/stat; }
for t in set get; do
  c0=$(cpu); s0=$(date +%s.%N)
  out=$(redis-benchmark -p $port -P 16 -c 50 -n 300000 -r 100000 -d 64 -t $t -q 2>/dev/null | tr '\r' '\n' | grep -a "requests per second" | tail -1)
  c1=$(cpu); s1=$(date +%s.%N)
  echo "$label $t: $out cpu_us_per_req=$(echo "($c1-$c0)*1000000/$tick/300000" | bc -l | cut -c1-6) wall=$(echo "$s1-$s0" | bc | cut -c1-5)"
done
kill $pid; wait $pid 2>/dev/null; rm -rf $dir
