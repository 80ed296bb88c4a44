#!/bin/bash
# Independent check with wrk -t1 (Debian's wrk: apt-get install wrk):
# transport, infergate (batching, drift on, metrics on, router in the
# path) and the hand-written server, interleaved rounds, on the
# repositories of a suite run (make bench keeps them under BENCH_OUT/raw).
# Beside each figure: the CPU time a request of the server and of wrk,
# from /proc (utime+stime), which splits the machine between the server
# and its load generator.
#   scripts/bench-wrk.sh SUITE_RAW_DIR [ROUNDS]
cd "$(dirname "$0")/.."  # the repository root
LIB=$PWD/.cache/onnxruntime/1.29.0/libonnxruntime.so
RAW=${1:?the raw folder of a suite run, e.g. benchmarks/results/2026-12-02/issue10/suite/raw}
ROUNDS=${2:-2}
TCK=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
for sc in mlp_small:mlp mlp_256:mlp_256; do
  S=${sc%%:*}; M=${sc##*:}
  MP=$(ls $RAW/$S/repo-infergate-batching/$M/1/model.onnx)
  bin/infergate serve --model-repository $RAW/$S/repo-infergate-batching --http-address 127.0.0.1 --http-port 18201 --grpc-port 0 --onnxruntime-lib $LIB >/tmp/ig.log 2>&1 & P1=$!
  bin/infergate-bench serve-transport --address 127.0.0.1:18202 --answer $RAW/$S/answer.bin --header-length 0 >/tmp/tr.log 2>&1 & P2=$!
  bin/infergate-bench serve-handwritten --address 127.0.0.1:18203 --model-name $M --model $MP --onnxruntime-lib $LIB >/tmp/hw.log 2>&1 & P3=$!
  sleep 4
  # A body from the model's metadata: one row of random floats in [0,1).
  curl -s 127.0.0.1:18201/v2/models/$M | python3 -c '
import json,sys,random
random.seed(7)
md=json.load(sys.stdin); i=md["inputs"][0]; n=1
for d in i["shape"][1:]: n*=d
print(json.dumps({"inputs":[{"name":i["name"],"shape":[1]+i["shape"][1:],"datatype":i["datatype"],"data":[round(random.random(),6) for _ in range(n)]}]}))' > /tmp/body-$S.json
  for round in $(seq $ROUNDS); do
    for srv in transport:18202:$P2 infergate:18201:$P1 handwritten:18203:$P3; do
      name=${srv%%:*}; rest=${srv#*:}; port=${rest%%:*}; pid=${rest#*:}
      for c in 64 1; do
        s0=$(cpu $pid)
        BODY=/tmp/body-$S.json wrk -t1 -c$c -d5s --latency -s scripts/wrk-post.lua http://127.0.0.1:$port/v2/models/$M/infer >/tmp/wrk.out 2>&1 & W=$!
        w=0; while kill -0 $W 2>/dev/null; do w=$(cpu $W 2>/dev/null || echo $w); sleep 0.2; done
        wait $W; s1=$(cpu $pid)
        r=$(grep RESULT /tmp/wrk.out)
        n=$(awk '/requests in/{print $1}' /tmp/wrk.out)
        echo "$S round $round $name c$c $r server_cpu_us/req $(awk -v a=$s0 -v b=$s1 -v n=$n -v t=$TCK 'BEGIN{printf "%.1f", (b-a)/t*1e6/n}') wrk_cpu_us/req $(awk -v a=$w -v n=$n -v t=$TCK 'BEGIN{printf "%.1f", a/t*1e6/n}')"
      done
    done
  done
  kill $P1 $P2 $P3; wait 2>/dev/null
done
