#!/bin/bash
# A/B of two infergate binaries, alternating rounds, on one scenario, as
# the suite runs infergate-batching (metrics on, drift on every output,
# router in the path, dynamic batching):
#   ab.sh OLD_BINARY NEW_BINARY ROUNDS MODEL CONCURRENCY [load flags...]
# MODEL is mlp (the 16-32-4 test MLP), mlp_256 or mlp_2048. Prints a line
# a round and binary: req/s, p50, p99 and rows per execution.
# Environment: SERVE_FLAGS (both servers), OLD_ENV / NEW_ENV (an env(1)
# prefix for one, e.g. NEW_ENV=GOMAXPROCS=2), NEW_CONFIG (YAML lines added
# to the model's config.yaml for NEW only; OLD and NEW may then be the same
# binary).
set -e
cd "$(dirname "$0")/../../../../.."  # the repository root
OLD=$1 NEW=$2 ROUNDS=$3 MODEL=$4 C=$5; shift 5
LIB=$PWD/.cache/onnxruntime/1.29.0/libonnxruntime.so
REPO=$(mktemp -d)
trap 'rm -rf $REPO $REPO2' EXIT
case $MODEL in
mlp) SRC=testdata/models/mlp/1/model.onnx ;;
*) SRC=.cache/bench-models/$MODEL/1/model.onnx ;;
esac
mkdir -p $REPO/$MODEL/1 && cp $SRC $REPO/$MODEL/1/
printf 'max_batch_size: 64\nmonitoring:\n  drift: {}\ndynamic_batching: {}\n' > $REPO/$MODEL/config.yaml
REPO2=$(mktemp -d); cp -r $REPO/. $REPO2 && printf "%s\n" "${NEW_CONFIG:-}" >> $REPO2/$MODEL/config.yaml
for r in $(seq $ROUNDS); do
  for side in old new; do
    if [ $side = old ]; then b=$OLD R=$REPO E=${OLD_ENV:-}; else b=$NEW R=$REPO2 E=${NEW_ENV:-}; fi
    env $E $b serve --model-repository $R --http-address 127.0.0.1 --http-port 18311 --grpc-port 0 --onnxruntime-lib $LIB ${SERVE_FLAGS} >/tmp/ab-server.log 2>&1 & P=$!
    for i in $(seq 50); do curl -sf 127.0.0.1:18311/v2/health/ready >/dev/null && break; sleep 0.2; done
    line=$(bin/infergate-bench load --url http://127.0.0.1:18311 --model $MODEL --concurrency $C --window 1s --max-windows 8 --quiet "$@" 2>&1 | tail -1)
    rows=$(curl -s 127.0.0.1:18311/metrics | awk '/^infergate_batch_size_sum/{s=$2} /^infergate_batch_size_count/{c=$2} END{if(c>0) printf "%.1f", s/c}')
    kill $P; wait $P 2>/dev/null || true
    echo "round $r $side: $(echo $line | awk '{print $4, "req/s p50", $6, "p99", $8}') rows/exec $rows"
  done
done
