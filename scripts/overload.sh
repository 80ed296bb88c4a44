#!/usr/bin/env bash
# Overload: the 256-512-512-10 MLP with dynamic batching, in open loop at
# half and at twice its capacity, with admission off and adaptive
# (http.admission_limit 0, -1 and 128; MODES overrides). Capacity is measured first (closed
# loop, c64). Results: a table on stdout and the JSON of each run in OUT.
#
#   scripts/overload.sh [OUT]     (make overload)
#
# SERVER_CPUS and LOAD_CPUS (taskset lists, e.g. 1 and 0) pin the server
# and the load generator to separate cores, so that the generator can
# offer twice the server's capacity without taking the server's CPU.
# MODEL (default mlp_256) names another of .cache/bench-models, e.g.
# mlp_2048, whose capacity is compute-bound. NICES (default 0) lists
# onnxruntime.execution_nice values: each mode runs at each, side by side
# (runs at a nice other than 0 are named MODEn<nice>). FLOOR=1 (the
# default) adds a run named floor: a server that refuses every request
# past a burst of 100 with 429 (a tenant rate of 1/s, checked before
# decoding; no execution, only a refusal), offered twice the capacity, the lowest refusal latency and the
# CPU that refusals alone cost on this machine. Each run prints the
# server's CPU use over its load (user + system, % of one core).
# INFERGATE_BIN (default bin/infergate) and SERVER_ENV (e.g. "A=1 B=2")
# run another build of the server, or the same one with environment
# variables, for an experiment beside the shipped one.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-benchmarks/results/$(date -u +%F)/overload}
mkdir -p "$OUT/raw"
LIB=${ONNXRUNTIME_LIB:?set ONNXRUNTIME_LIB}
repo=$(mktemp -d)
MODEL=${MODEL:-mlp_256}
trap 'kill $pid 2>/dev/null || true; rm -rf "$repo"' EXIT
mkdir -p "$repo/$MODEL/1"
cp .cache/bench-models/$MODEL/1/model.onnx "$repo/$MODEL/1/"
printf 'max_batch_size: 64\ndynamic_batching: {}\n' >"$repo/$MODEL/config.yaml"
port=${PORT:-18123}
url=http://127.0.0.1:$port

start() { # admission_limit execution_nice run-name [more gateway config]
	printf 'http:\n  admission_limit: %s\nonnxruntime:\n  execution_nice: %s\n%s' "$1" "$2" "${4:-}" >"$repo/gateway.yaml"
	${SERVER_CPUS:+taskset -c $SERVER_CPUS} env ${SERVER_ENV:-} "${INFERGATE_BIN:-bin/infergate}" serve --config "$repo/gateway.yaml" --model-repository "$repo" --http-address 127.0.0.1 \
		--http-port "$port" --grpc-port 0 --onnxruntime-lib "$LIB" --log-level warn 2>"$OUT/raw/server-$3.log" &
	pid=$!
	for _ in $(seq 100); do curl -sf "$url/v2/health/ready" >/dev/null && return; sleep 0.1; done
	echo "server did not start" >&2; exit 1
}
stop() { kill "$pid"; wait "$pid" || true; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; } # user + system, in clock ticks
load() { # rates run-name: the open loop; sets cpu, the server's CPU use over it
	local t0 c0 t1 c1
	t0=$(date +%s%N) c0=$(ticks)
	${LOAD_CPUS:+taskset -c $LOAD_CPUS} bin/infergate-bench load --url "$url" --model $MODEL --request-rate "$1" --max-in-flight 2048 \
		--quiet --json "$OUT/admission$2.json" >"$OUT/admission$2.txt"
	t1=$(date +%s%N) c1=$(ticks)
	cpu=$(((c1 - c0) * 100000000000 / $(getconf CLK_TCK) / (t1 - t0)))
}

start 0 0 capacity
${LOAD_CPUS:+taskset -c $LOAD_CPUS} bin/infergate-bench load --url "$url" --model $MODEL --concurrency 64 --quiet --json "$OUT/capacity.json" >/dev/null
cap=$(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))[0]["throughput"]))' "$OUT/capacity.json")
stop
half=$((cap / 2)); double=$((cap * 2))
echo "capacity (c64, closed loop): $cap req/s; open loop at $half and $double req/s"
runs=()
for mode in ${MODES:-0 -1 128}; do
	for nice in ${NICES:-0}; do
		run=$mode
		[ "$nice" = 0 ] || run=${mode}n$nice
		runs+=("$run")
		start "$mode" "$nice" "$run"
		before=$(rss)
		load "$half,$double" "$run"
		after=$(rss)
		stop
		echo "== http.admission_limit: $mode, onnxruntime.execution_nice: $nice   (server RSS $((before / 1024)) -> $((after / 1024)) MiB, CPU $cpu % of a core)"
		cat "$OUT/admission$run.txt"
	done
done
if [ "${FLOOR:-1}" = 1 ]; then
	runs+=(floor)
	start 0 0 floor $'tenants:\n  limits: [{name: other, rate_per_second: 1, burst: 100}]\n'
	load "$double" floor
	stop
	echo "== floor: every request refused (429) by a tenant rate of 1/s   (server CPU $cpu % of a core at $double req/s)"
	cat "$OUT/admissionfloor.txt"
fi

# The figures: service times are from each request's actual send (the
# server's time); latency from its intended send (the generator's lag
# included, which dominates once the generator saturates these cores).
python3 - "$OUT" "${runs[@]}" <<'PY'
import json, sys
out, modes = sys.argv[1], sys.argv[2:]
print("\n| admission_limit (n: execution_nice) | offered req/s | answered req/s | refused req/s | refused service p50 / p99 | admitted service p99 | admitted p99 from intended send | send lag p50 |")
print("|---|---|---|---|---|---|---|---|")
ms = lambda us: f"{us/1e3:.2f} ms"
for m in modes:
    for r in json.load(open(f"{out}/admission{m}.json")):
        ref = sum((r.get("non_2xx") or {}).values()) / r["seconds"]
        rs = r.get("refused")
        rtxt = f"{ms(rs['p50_us'])} / {ms(rs['p99_us'])}" if rs else "-"
        print(f"| {m} | {r['rate']:.0f} | {r['throughput']:.0f} | {ref:.0f} | {rtxt} | {ms(r['service']['p99_us'])} | {ms(r['latency']['p99_us'])} | {ms(r['send_lag']['p50_us'])} |")
PY
