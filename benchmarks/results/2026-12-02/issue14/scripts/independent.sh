#!/bin/bash
# Independent clients for gRPC against HTTP binary on mlp_256 (256-512-512-10):
# h2load (nghttp2-client) sends a pre-encoded ModelInferRequest with raw
# contents over one HTTP/2 connection (c streams), wrk -t1 sends the same
# tensor in the binary extension over c HTTP/1.1 connections. Both are C
# clients that do far less work per call than the Go clients of
# infergate-bench, so the comparison shows the server's cost more than the
# client's. Batching off and on (dynamic_batching: {}), one server per mode
# serving both protocols, interleaved rounds, order reversed each round,
# max_batch_size 64 as in benchmarks/scenarios/mlp_256.yaml.
# The server's CPU time per answered request comes from /proc/PID/stat.
set -e
cd "$(dirname "$0")/../../../../.."  # the repository root
HERE=benchmarks/results/2026-12-02/issue14/scripts
LIB=$PWD/.cache/onnxruntime/1.29.0/libonnxruntime.so
W=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; rm -rf $W' EXIT
python3 $HERE/payload.py $W
H=$(cat $W/header-length)
cat > $W/post.lua <<LUA
wrk.method = "POST"
local f = io.open("$W/http.bin", "rb"); wrk.body = f:read("*a"); f:close()
wrk.headers["Inference-Header-Content-Length"] = "$H"
wrk.headers["Content-Type"] = "application/octet-stream"
LUA
DUR=${DUR:-6}
cpu() { awk '{print $14+$15}' /proc/$1/stat; }  # clock ticks (100/s)
for mode in off on; do
  mkdir -p $W/repo-$mode/mlp_256/1
  cp .cache/bench-models/mlp_256/1/model.onnx $W/repo-$mode/mlp_256/1/model.onnx
  if [ $mode = on ]; then printf 'max_batch_size: 64\ndynamic_batching: {}\n' > $W/repo-$mode/mlp_256/config.yaml
  else echo 'max_batch_size: 64' > $W/repo-$mode/mlp_256/config.yaml; fi
  bin/infergate serve --model-repository $W/repo-$mode --http-address 127.0.0.1 --http-port 18301 \
    --grpc-address 127.0.0.1 --grpc-port 18302 --onnxruntime-lib $LIB >$W/ig-$mode.log 2>&1 & P=$!
  sleep 3
  # h2load and wrk count statuses, not answers: check one call of each.
  nghttp -v -d $W/grpc.bin -H 'content-type: application/grpc' -H 'te: trailers' \
    http://127.0.0.1:18302/inference.GRPCInferenceService/ModelInfer | grep -q 'grpc-status: 0' || { echo "gRPC call failed"; exit 1; }
  curl -sf -o /dev/null -XPOST --data-binary @$W/http.bin -H "Inference-Header-Content-Length: $H" \
    http://127.0.0.1:18301/v2/models/mlp_256/infer || { echo "HTTP call failed"; exit 1; }
  wrk -t1 -c64 -d2s -s $W/post.lua http://127.0.0.1:18301/v2/models/mlp_256/infer >/dev/null  # warm-up
  grpc() {
    local c0 c1 out n
    c0=$(cpu $P)
    out=$(h2load -t1 -c1 -m$1 -D $DUR -d $W/grpc.bin -H 'content-type: application/grpc' -H 'te: trailers' \
      http://127.0.0.1:18302/inference.GRPCInferenceService/ModelInfer 2>&1)
    c1=$(cpu $P)
    n=$(echo "$out" | grep -oE '[0-9]+ succeeded' | grep -oE '^[0-9]+')
    printf "batching-%-3s grpc/h2load       c%-3s %9s req/s  mean %8s  sd %8s  failed %s  server cpu %s us/req\n" $mode $1 \
      "$(echo "$out" | grep -oE 'finished in [0-9.]+s, [0-9.]+' | awk '{print $4}')" \
      "$(echo "$out" | awk '/time for request/ {print $6}')" "$(echo "$out" | awk '/time for request/ {print $7}')" \
      "$(echo "$out" | grep -oE '[0-9]+ failed' | grep -oE '^[0-9]+')" "$(( (c1-c0)*10000 / n ))"
  }
  http() {
    local c0 c1 out n
    c0=$(cpu $P)
    out=$(wrk -t1 -c$1 -d${DUR}s --latency -s $W/post.lua http://127.0.0.1:18301/v2/models/mlp_256/infer 2>&1)
    c1=$(cpu $P)
    n=$(echo "$out" | grep -oE '^ *[0-9]+ requests in' | grep -oE '[0-9]+')
    printf "batching-%-3s http-binary/wrk   c%-3s %9s req/s  p50 %8s  p99 %8s  non-2xx %s  server cpu %s us/req\n" $mode $1 \
      "$(echo "$out" | awk '/Requests\/sec/ {print $2}')" "$(echo "$out" | awk '$1=="50%" {print $2}')" "$(echo "$out" | awk '$1=="99%" {print $2}')" \
      "$(echo "$out" | awk '/Non-2xx/ {print $NF}' | grep . || echo 0)" "$(( (c1-c0)*10000 / n ))"
  }
  for round in 1 2 3; do
    for c in 1 64; do
      if [ $((round % 2)) = 1 ]; then grpc $c; http $c; else http $c; grpc $c; fi
    done
  done
  kill $P; wait $P 2>/dev/null || true
done
