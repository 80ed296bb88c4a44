#!/bin/bash
# gRPC A/B: OLD NEW ROUNDS C
cd /work/main
OLD=$1 NEW=$2 ROUNDS=$3 C=$4
LIB=$PWD/.cache/onnxruntime/1.29.0/libonnxruntime.so
R=$(mktemp -d); mkdir -p $R/mlp_256/1; cp .cache/bench-models/mlp_256/1/model.onnx $R/mlp_256/1/
printf 'max_batch_size: 64\nmonitoring:\n  drift: {}\ndynamic_batching: {}\n' > $R/mlp_256/config.yaml
for r in $(seq $ROUNDS); do for side in old new; do
  if [ $side = old ]; then b=$OLD; else b=$NEW; fi
  $b serve --model-repository $R --http-address 127.0.0.1 --http-port 18311 --grpc-port 18312 --onnxruntime-lib $LIB >/tmp/gab-server.log 2>&1 & P=$!
  for i in $(seq 50); do curl -sf 127.0.0.1:18311/v2/health/ready >/dev/null && break; sleep 0.2; done
  line=$(bin/infergate-bench load --protocol grpc --url 127.0.0.1:18312 --model mlp_256 --concurrency $C --window 1s --max-windows 8 --quiet 2>&1 | tail -1)
  cpu=$(awk '{print $14+$15}' /proc/$P/stat)
  kill $P; wait $P 2>/dev/null
  echo "round $r $side: $(echo $line | awk '{print $4, "req/s p50", $6, "p99", $8, "ok", $11}') cpu_ticks $cpu"
done; done
rm -rf $R
