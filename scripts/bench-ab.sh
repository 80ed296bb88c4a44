#!/bin/bash
# A/B of two infergate binaries (or one binary with two configs or
# environments), alternating rounds, on one scenario, as the suite runs
# infergate-batching: metrics on, drift on every output, router in the
# path, dynamic batching.
#   scripts/bench-ab.sh OLD_BINARY NEW_BINARY ROUNDS MODEL CONCURRENCY [load flags...]
# MODEL is mlp (the 16-32-4 test MLP), mlp_256 or mlp_2048. The order of
# the two alternates from round to round. Prints a line a round and side:
# req/s, p50, p99, rows per execution, and the server's CPU time a
# request (utime+stime from /proc, its startup included).
# Environment:
#   PROTOCOL     http (default) or grpc (KServe v2 gRPC, raw contents)
#   CONFIG       the model's config.yaml for both (default: the suite's)
#   OLD_CONFIG, NEW_CONFIG   YAML lines added to it for one side
#   OLD_ENV, NEW_ENV         an env(1) prefix for one side, e.g. GOMAXPROCS=2
#   SERVE_FLAGS  more flags for both servers
set -e
cd "$(dirname "$0")/.."  # the repository root
OLD=$1 NEW=$2 ROUNDS=$3 MODEL=$4 C=$5; shift 5
LIB=$PWD/.cache/onnxruntime/1.29.0/libonnxruntime.so
case $MODEL in
mlp) SRC=testdata/models/mlp/1/model.onnx ;;
*) SRC=.cache/bench-models/$MODEL/1/model.onnx ;;
esac
CONFIG=${CONFIG:-$'max_batch_size: 64\nmonitoring:\n  drift: {}\ndynamic_batching: {}'}
OLDREPO=$(mktemp -d) NEWREPO=$(mktemp -d)
trap 'rm -rf $OLDREPO $NEWREPO' EXIT
for side in old new; do
  if [ $side = old ]; then R=$OLDREPO X=${OLD_CONFIG:-}; else R=$NEWREPO X=${NEW_CONFIG:-}; fi
  mkdir -p $R/$MODEL/1 && cp $SRC $R/$MODEL/1/
  printf '%s\n%s\n' "$CONFIG" "$X" > $R/$MODEL/config.yaml
done
case ${PROTOCOL:-http} in
http) LOAD=(--url http://127.0.0.1:18311) ;;
grpc) LOAD=(--protocol grpc --url 127.0.0.1:18312) ;;
*) echo "PROTOCOL: http or grpc" >&2; exit 2 ;;
esac
for r in $(seq $ROUNDS); do
  order="old new"; [ $((r % 2)) = 0 ] && order="new old"  # neither side always second
  for side in $order; do
    if [ $side = old ]; then b=$OLD R=$OLDREPO E=${OLD_ENV:-}; else b=$NEW R=$NEWREPO E=${NEW_ENV:-}; fi
    env $E $b serve --model-repository $R --http-address 127.0.0.1 --http-port 18311 --grpc-port 18312 --onnxruntime-lib $LIB ${SERVE_FLAGS} >/tmp/ab-server.log 2>&1 & P=$!
    for i in $(seq 50); do curl -sf 127.0.0.1:18311/v2/health/ready >/dev/null && break; sleep 0.2; done
    line=$(bin/infergate-bench load "${LOAD[@]}" --model $MODEL --concurrency $C --window 1s --max-windows 8 --quiet "$@" 2>&1 | tail -1)
    rows=$(curl -s 127.0.0.1:18311/metrics | awk '/^infergate_batch_size_sum/{s=$2} /^infergate_batch_size_count/{c=$2} END{if(c>0) printf "%.1f", s/c}')
    n=$(curl -s 127.0.0.1:18311/metrics | awk '/^infergate_requests_total/{n+=$2} END{print n+0}')
    cpu=$(awk -v t=$(getconf CLK_TCK) -v n=$n '{if (n > 0) printf "%.1f", ($14+$15)/t*1e6/n}' /proc/$P/stat)
    kill $P; wait $P 2>/dev/null || true
    echo "round $r $side: $(echo $line | awk '{print $4, "req/s p50", $6, "p99", $8}') rows/exec ${rows:--} cpu_us/req ${cpu:--}"
  done
done
