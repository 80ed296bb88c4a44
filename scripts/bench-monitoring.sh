#!/usr/bin/env bash
# The cost of monitoring: the 256->512->512->10 MLP, JSON, one row a
# request, at concurrency 64, with metrics and drift on (input and output
# watched, 100 % sampling) against --allow-metrics=false, in alternating
# rounds on the same machine. Each round starts a fresh server.
#
#   scripts/bench-monitoring.sh OUT_DIR [ROUNDS]   (make bench-monitoring)
set -euo pipefail
out=${1:?usage: bench-monitoring.sh OUT_DIR [ROUNDS]}
rounds=${2:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
lib=${ONNXRUNTIME_LIB:-$root/.cache/onnxruntime/1.29.0/libonnxruntime.so}
model=$root/.cache/bench-models/mlp_256/1/model.onnx
mkdir -p "$out"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
for kind in off on; do
  mkdir -p "$work/$kind/mlp_256/1"
  cp "$model" "$work/$kind/mlp_256/1/model.onnx"
  printf 'max_batch_size: 64\ndynamic_batching: {}\n' > "$work/$kind/mlp_256/config.yaml"
done
cat >> "$work/on/mlp_256/config.yaml" <<'YAML'
monitoring:
  drift:
    inputs: [input]          # and every output, by default
    reference: {first: 1000}
    window: 1000
    sample_rate: 1.0
YAML
port=18731
echo "round,monitoring,throughput_rps,p50_ms,p99_ms" > "$out/rounds.csv"
for r in $(seq 1 "$rounds"); do
  for kind in off on; do
    flags=()
    [ "$kind" = off ] && flags=(--allow-metrics=false)
    "$root/bin/infergate" serve --model-repository "$work/$kind" --http-address 127.0.0.1 --http-port $port --grpc-port 0 \
      --onnxruntime-lib "$lib" --log-level warn "${flags[@]}" 2> "$work/server-$kind-$r.log" &
    pid=$!
    for _ in $(seq 100); do curl -sf "localhost:$port/v2/health/ready" >/dev/null && break; sleep 0.1; done
    "$root/bin/infergate-bench" load --url "http://127.0.0.1:$port" --model mlp_256 --concurrency 64 \
      --window 2s --max-windows 6 --quiet --json "$out/round$r-$kind.json" > "$out/round$r-$kind.txt"
    if [ "$kind" = on ]; then
      curl -s "localhost:$port/metrics" | grep -E '^infergate_(drift_(dropped_total|window_samples)|requests_total)' > "$out/round$r-drift.txt" || true
    fi
    kill -TERM $pid; wait $pid || true
    python3 - "$out/round$r-$kind.json" "$r" "$kind" >> "$out/rounds.csv" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
res = d[0] if isinstance(d, list) else (d.get("results") or [d])[0]
lat = res["latency"]
print(f"{sys.argv[2]},{sys.argv[3]},{res['throughput']:.0f},{lat['p50_us']/1000:.3f},{lat['p99_us']/1000:.3f}")
PY
  done
done
cat "$out/rounds.csv"
