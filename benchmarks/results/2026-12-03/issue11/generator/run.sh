#!/usr/bin/env bash
# run.sh LIMIT RATE: the server on core 1 and the generator on core 0; prints the
# load line, the server's CPU and both cores' use. Run from the repository root
# after make build bin/infergate-bench bench-models, with ONNXRUNTIME_LIB set.
# BIN names another server binary (the experiments' patched ones), ENVS and LENV
# prefix the server's and the generator's command (e.g. "env EXP_RATE=200").
set -euo pipefail
LIMIT=$1 RATE=$2 MODEL=${MODEL:-mlp_2048}
work=$(mktemp -d); repo=$work/repo; mkdir -p $repo/$MODEL/1
cp .cache/bench-models/$MODEL/1/model.onnx $repo/$MODEL/1/
printf 'max_batch_size: 64\ndynamic_batching: {%s}\n' "${DYN:-}" >$repo/$MODEL/config.yaml
printf 'http:\n  admission_limit: %s\n%s' "$LIMIT" "${EXTRA:-}" >$repo/gateway.yaml
${ENVS:-} taskset -c 1 ${BIN:-bin/infergate} serve --config $repo/gateway.yaml --model-repository $repo --http-address 127.0.0.1 --http-port 18123 --grpc-port 0 ${SARGS:-} --onnxruntime-lib $ONNXRUNTIME_LIB --log-level warn 2>$work/server.log &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -sf 127.0.0.1:18123/v2/health/ready >/dev/null && break; sleep 0.1; done
[ -n "${NOWARM:-}" ] || taskset -c 0 bin/infergate-bench load --url http://127.0.0.1:18123 --model $MODEL --concurrency 8 --window 200ms --max-windows 3 --quiet >/dev/null
t0=$(awk '{print $14+$15}' /proc/$pid/stat); c0=$(grep '^cpu[01] ' /proc/stat | tr '\n' ' '); s0=$(date +%s.%N)
${LENV:-} taskset -c 0 bin/infergate-bench load --url http://127.0.0.1:18123 --model ${LMODEL:-$MODEL} --request-rate $RATE --max-in-flight 2048 --window 500ms --max-windows ${WIN:-10} --quiet ${LOADARGS:-}
t1=$(awk '{print $14+$15}' /proc/$pid/stat); c1=$(grep '^cpu[01] ' /proc/stat | tr '\n' ' '); s1=$(date +%s.%N)
python3 - "$t0" "$t1" "$c0" "$c1" "$s0" "$s1" <<'PY'
import sys
t0, t1 = int(sys.argv[1]), int(sys.argv[2])
secs = float(sys.argv[6]) - float(sys.argv[5])
def parse(x):
    f = x.split()
    return {f[0]: list(map(int, f[1:11])), f[11]: list(map(int, f[12:22]))}
a, b = parse(sys.argv[3]), parse(sys.argv[4])
out = []
for c in ("cpu0", "cpu1"):
    d = [y - x for x, y in zip(a[c], b[c])]
    tot = sum(d); idle = d[3] + d[4]
    out.append(f"{c} busy {100*(tot-idle)/tot:.0f}% (sys {100*d[2]/tot:.0f} softirq {100*d[6]/tot:.0f})")
print(f"server process {100*(t1-t0)/100/secs:.0f}% of a core over {secs:.1f}s; " + "; ".join(out))
PY
