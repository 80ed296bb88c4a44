#!/bin/bash
# HTTP binary against gRPC raw contents on one infergate (batching, drift
# on, as the suite runs infergate-batching), beside the two protocols'
# transport limits (infergate-bench serve-transport: fasthttp and grpc-go
# answering a fixed message), in alternating rounds, with each server's
# and the load generator's CPU time a request.
#   scripts/bench-protocols.sh [ROUNDS]
# Environment:
#   MODEL        mlp_256 (default) or mlp_2048
#   C            concurrency (default 64)
#   SERVER_CPUS, LOAD_CPUS   taskset CPU lists for the servers and the load
#                generator (default: both on every core, as the suite runs)
# CPU time a request is utime+stime over the run divided by the requests
# the run sent, estimated as its req/s × its wall time (warm-up included).
set -e
cd "$(dirname "$0")/.."  # the repository root
ROUNDS=${1:-3} MODEL=${MODEL:-mlp_256} C=${C:-64}
LIB=$PWD/.cache/onnxruntime/1.29.0/libonnxruntime.so
PIN_S=() PIN_L=()
[ -n "${SERVER_CPUS:-}" ] && PIN_S=(taskset -c "$SERVER_CPUS")
[ -n "${LOAD_CPUS:-}" ] && PIN_L=(taskset -c "$LOAD_CPUS")
W=$(mktemp -d)
trap 'kill $P $TH $TG 2>/dev/null; wait 2>/dev/null; rm -rf $W' EXIT
mkdir -p $W/repo/$MODEL/1 && cp .cache/bench-models/$MODEL/1/model.onnx $W/repo/$MODEL/1/
printf 'max_batch_size: 64\nmonitoring:\n  drift: {}\ndynamic_batching: {}\n' > $W/repo/$MODEL/config.yaml
"${PIN_S[@]}" bin/infergate serve --model-repository $W/repo --http-address 127.0.0.1 --http-port 18321 --grpc-address 127.0.0.1 --grpc-port 18322 --onnxruntime-lib $LIB >$W/server.log 2>&1 & P=$!
for i in $(seq 50); do curl -sf 127.0.0.1:18321/v2/health/ready >/dev/null && break; sleep 0.2; done
# A request of the model's shape. The transport servers answer their own
# small default messages (the suite's transport rows send infergate's bytes).
python3 - "$W" "$MODEL" <<'PY'
import json, math, random, sys, urllib.request
w, m = sys.argv[1], sys.argv[2]
md = json.load(urllib.request.urlopen(f"http://127.0.0.1:18321/v2/models/{m}"))
ins = [{"name": t["name"], "datatype": t["datatype"], "shape": [1] + t["shape"][1:], "data": [random.random() for _ in range(abs(math.prod(t["shape"][1:])))]} for t in md["inputs"]]
json.dump({"inputs": ins}, open(f"{w}/request.json", "w"))
PY
bin/infergate-bench load --url http://127.0.0.1:18321 --binary --input-data $W/request.json --model $MODEL --concurrency 1 --window 100ms --max-windows 3 --quiet >/dev/null
"${PIN_S[@]}" bin/infergate-bench serve-transport --address 127.0.0.1:18323 2>$W/th.log & TH=$!
"${PIN_S[@]}" bin/infergate-bench serve-transport --protocol grpc --address 127.0.0.1:18324 2>$W/tg.log & TG=$!
sleep 1
T=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
for r in $(seq $ROUNDS); do
  sides=("infergate-http-binary $P --url http://127.0.0.1:18321 --binary" "infergate-grpc $P --protocol grpc --url 127.0.0.1:18322"
         "transport-http-binary $TH --url http://127.0.0.1:18323 --binary" "transport-grpc $TG --protocol grpc --url 127.0.0.1:18324")
  [ $((r % 2)) = 0 ] && sides=("${sides[1]}" "${sides[0]}" "${sides[3]}" "${sides[2]}")  # neither protocol always first
  for s in "${sides[@]}"; do
    set -- $s; name=$1 pid=$2; shift 2
    c0=$(cpu $pid)
    out=$( { /usr/bin/time -f "%U %S %e" "${PIN_L[@]}" bin/infergate-bench load "$@" --input-data $W/request.json --model $MODEL --concurrency $C --window 1s --max-windows 6 --quiet 2>&1; } 2>&1 | tail -2)
    c1=$(cpu $pid)
    awk -v a=$c0 -v b=$c1 -v t=$T -v ct="$(echo "$out" | tail -1)" -v l="$(echo "$out" | head -1)" -v n=$name -v r=$r 'BEGIN{
      split(ct, x, " "); split(l, y, " "); q = y[4]
      if (q ~ /k$/) { sub(/k$/, "", q); q *= 1000 }
      sent = q * x[3]
      printf "round %d %-22s %7s req/s  p50 %7s  p99 %7s  server %5.1f µs/req  load %5.1f µs/req\n", r, n, y[4], y[6], y[8], (b-a)/t*1e6/sent, (x[1]+x[2])*1e6/sent }'
  done
done
