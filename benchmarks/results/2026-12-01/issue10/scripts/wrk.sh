#!/bin/bash
# Independent check with wrk -t1: transport, infergate (batching), hand-written; interleaved rounds.
cd "$(dirname "$0")/../../../../.."  # the repository root
LIB=$PWD/.cache/onnxruntime/1.29.0/libonnxruntime.so
RAW=benchmarks/results/2026-12-01/issue10/raw
for sc in mlp_small:mlp mlp_256:mlp_256; do
  S=${sc%%:*}; M=${sc##*:}
  MP=$(ls $RAW/$S/repo-infergate-batching/$M/1/model.onnx)
  bin/infergate serve --model-repository $RAW/$S/repo-infergate-batching --http-address 127.0.0.1 --http-port 18201 --onnxruntime-lib $LIB >/tmp/ig.log 2>&1 & P1=$!
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
  for round in 1 2; do
    for srv in transport:18202 infergate:18201 handwritten:18203; do
      for c in 64 1; do
        r=$(BODY=/tmp/body-$S.json wrk -t1 -c$c -d5s --latency -s $(dirname "$0")/post.lua http://127.0.0.1:${srv##*:}/v2/models/$M/infer 2>&1 | grep RESULT)
        echo "$S round $round ${srv%%:*} c$c $r"
      done
    done
  done
  kill $P1 $P2 $P3; wait 2>/dev/null
done
