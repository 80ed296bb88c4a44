#!/bin/bash
# Profiles infergate (batching, drift on, metrics on, router in the path) on
# the 256 MLP, JSON, c=64 with infergate-bench load on the same 2 cores:
# CPU profile, execution trace, mutex and block profiles, gctrace.
#   scripts/bench-profile.sh OUTDIR [extra serve flags...]
# MODEL=mlp (the 16-32-4 test MLP) or mlp_2048 profiles another model, C another concurrency.
set -e
cd "$(dirname "$0")/.."  # the repository root
OUT=${1:?outdir}; shift
mkdir -p "$OUT"
LIB=$PWD/.cache/onnxruntime/1.29.0/libonnxruntime.so
REPO=$(mktemp -d)
M=${MODEL:-mlp_256}
case $M in
mlp) SRC=testdata/models/mlp/1/model.onnx ;;
*) SRC=.cache/bench-models/$M/1/model.onnx ;;
esac
mkdir -p $REPO/$M/1
cp $SRC $REPO/$M/1/
printf 'max_batch_size: 64\nmonitoring:\n  drift: {}\ndynamic_batching: {}\n' > $REPO/$M/config.yaml
printf 'admin:\n  mutex_profile_fraction: 10\n  block_profile_rate: 10000\n' > $REPO/gw.yaml
GODEBUG=gctrace=1 bin/infergate serve --config $REPO/gw.yaml --model-repository $REPO --http-address 127.0.0.1 --http-port 18301 --grpc-port 0 \
  --admin-port 18302 --onnxruntime-lib $LIB "$@" >"$OUT/server.log" 2>&1 & P=$!
trap 'kill $P 2>/dev/null; rm -rf $REPO' EXIT
for i in $(seq 50); do curl -sf 127.0.0.1:18301/v2/health/ready >/dev/null && break; sleep 0.2; done
bin/infergate-bench load --url http://127.0.0.1:18301 --model $M --concurrency ${C:-64} --window 1s --max-windows 16 --stable-windows 16 --quiet --json "$OUT/load.json" >"$OUT/load.txt" 2>&1 & L=$!
sleep 3
curl -s "127.0.0.1:18302/debug/pprof/mutex" >/dev/null   # reset point
curl -s -o "$OUT/cpu.pprof" "127.0.0.1:18302/debug/pprof/profile?seconds=5"
curl -s -o "$OUT/trace.out" "127.0.0.1:18302/debug/pprof/trace?seconds=2"
curl -s -o "$OUT/mutex.pprof" "127.0.0.1:18302/debug/pprof/mutex"
curl -s -o "$OUT/block.pprof" "127.0.0.1:18302/debug/pprof/block"
wait $L
curl -s 127.0.0.1:18301/metrics | grep -E '^infergate_batch_size_(sum|count)' > "$OUT/batch.txt" || true
