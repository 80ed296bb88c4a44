#!/bin/bash
# The wrk -t1 check of this run. It lives on as scripts/bench-wrk.sh; this
# run used its first version, without the CPU columns
# (git show a56361a^:benchmarks/results/2026-12-01/issue10/scripts/wrk.sh).
cd "$(dirname "$0")/../../../../.."  # the repository root
exec scripts/bench-wrk.sh benchmarks/results/2026-12-01/issue10/raw "$@"
