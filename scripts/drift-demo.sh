#!/usr/bin/env bash
# The README's drift screenshot: a gateway serving the drift test model, a
# real Prometheus scraping it every second, a stream that shifts half-way,
# and headless Chromium taking a picture of Prometheus's graph page.
#
#   scripts/drift-demo.sh OUT.png     (needs bin/infergate, prometheus, chromium)
set -euo pipefail
png=${1:?usage: drift-demo.sh OUT.png}
root=$(cd "$(dirname "$0")/.." && pwd)
lib=${ONNXRUNTIME_LIB:-$root/.cache/onnxruntime/1.29.0/libonnxruntime.so}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/models"
cp -r "$root/testdata/models/drift_mlp" "$work/models/"
cat > "$work/models/drift_mlp/config.yaml" <<'YAML'
max_batch_size: 64
dynamic_batching: {}
monitoring:
  drift:
    inputs: [input]
    reference: {first: 1000}
    window: 1000
YAML
"$root/bin/infergate" serve --model-repository "$work/models" --http-address 127.0.0.1 --http-port 18800 --grpc-port 0 \
  --onnxruntime-lib "$lib" --log-level warn 2> "$work/gateway.log" &
for _ in $(seq 100); do curl -sf localhost:18800/v2/health/ready >/dev/null && break; sleep 0.1; done
cat > "$work/prometheus.yml" <<YAML
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: infergate
    static_configs: [{targets: ["127.0.0.1:18800"]}]
YAML
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
  --web.listen-address=127.0.0.1:19090 2> "$work/prometheus.log" &
sleep 3
# 1000 reference rows, then 35 s unshifted, then 35 s with the first 32
# of 256 features moved by +1.5.
python3 - <<'PY'
import json, random, time, urllib.request
rng = random.Random(7)
def send(shift):
    data = [rng.uniform(-1, 1) + (1.5 if shift and j < 32 else 0) for _ in range(10) for j in range(256)]
    body = json.dumps({"inputs": [{"name": "input", "shape": [10, 256], "datatype": "FP32", "data": data}]}).encode()
    urllib.request.urlopen("http://127.0.0.1:18800/v2/models/drift_mlp/infer", body).read()
for _ in range(100):
    send(False)
for shift in (False, True):
    end = time.time() + 40
    while time.time() < end:
        send(shift)
        time.sleep(0.05)
PY
sleep 3
# Two graphs: the alarm (infergate_drift_detected going to 1), and the
# PSI behind it.
q0=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' 'infergate_drift_detected{model="drift_mlp"}')
q1=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' 'infergate_drift_score{model="drift_mlp",statistic="psi"}')
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$work/chrome" --hide-scrollbars \
  --window-size=1400,1500 --virtual-time-budget=15000 --screenshot="$png" \
  "http://127.0.0.1:19090/graph?g0.expr=$q0&g0.tab=0&g0.range_input=90s&g1.expr=$q1&g1.tab=0&g1.range_input=90s" 2> "$work/chrome.log"
curl -s "http://127.0.0.1:18800/v2/repository/models/drift_mlp/versions/1/drift" | python3 -c 'import json,sys; r=json.load(sys.stdin); print([(t["kind"], t["detected"], round(t["psi"],3)) for t in r["tensors"]])'
echo "wrote $png"
