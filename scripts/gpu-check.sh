#!/usr/bin/env bash
# The GPU check of infergate's runtime, for a machine with an NVIDIA GPU:
# runs the MLP and PaddleOCR's classifier on CUDA and TensorRT and compares
# them with the CPU (runtime.TestGPU).
#
# Here (with Go and the network):
#   scripts/fetch-onnxruntime.sh --gpu && scripts/fetch-models.sh
#   go test -c -o bin/runtime.test ./runtime/
# There (CUDA 13 and cuDNN 9 found in python3's nvidia/* packages, as PyTorch
# installs them, or already on LD_LIBRARY_PATH):
#   scripts/gpu-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
lib=${ONNXRUNTIME_LIB:-$PWD/.cache/onnxruntime/1.29.0/libonnxruntime.so}
for f in "$lib" "$(dirname "$lib")/libonnxruntime_providers_cuda.so" bin/runtime.test; do
	[ -e "$f" ] || { echo "gpu-check: missing $f (see the header of this script)" >&2; exit 1; }
done
extra=$(python3 - <<'PY' 2>/dev/null || true
import glob, os, site
dirs = []
for base in site.getsitepackages() + [site.getusersitepackages()]:
    dirs += sorted(glob.glob(os.path.join(base, "nvidia", "*", "lib")))
    dirs += sorted(glob.glob(os.path.join(base, "tensorrt_libs")))
print(":".join(dirs))
PY
)
export LD_LIBRARY_PATH="${extra}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
command -v nvidia-smi >/dev/null && nvidia-smi -L
INFERGATE_GPU=1 ONNXRUNTIME_LIB=$lib bin/runtime.test -test.run '^TestGPU$' -test.v
