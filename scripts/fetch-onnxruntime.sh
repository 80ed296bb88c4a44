#!/usr/bin/env bash
# Fetch ONNX Runtime 1.29.0 for infergate and print the path of the core library.
#
#   scripts/fetch-onnxruntime.sh          # CPU: libonnxruntime.so
#   scripts/fetch-onnxruntime.sh --gpu    # also the CUDA 13 / TensorRT 10 provider libraries
#
# Order of sources:
#   1. $ONNXRUNTIME_LIB, if set (used as is, nothing is downloaded);
#   2. the cache, .cache/onnxruntime/1.29.0/ (ignored by git);
#   3. the official release tarball from GitHub;
#   4. the npm registry (onnxruntime-node@1.29.0 ships the same libonnxruntime.so.1), for
#      machines that reach npm but not GitHub.
# For --gpu the provider libraries come from the official onnxruntime-linux-x64-gpu tarball or,
# failing that, npm's com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9 (built from 1.29.0). They
# need CUDA 13 and cuDNN 9 at run time.
set -euo pipefail

VERSION=1.29.0
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${INFERGATE_CACHE:-$ROOT/.cache}/onnxruntime/$VERSION
RELEASE=https://github.com/microsoft/onnxruntime/releases/download/v$VERSION
NPM_CPU=onnxruntime-node@$VERSION
NPM_GPU=com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9

gpu=0
for arg in "$@"; do
	case $arg in
	--gpu) gpu=1 ;;
	-h | --help) sed -n '2,16p' "$0"; exit 0 ;;
	*) echo "fetch-onnxruntime: unknown argument $arg" >&2; exit 2 ;;
	esac
done

log() { echo "fetch-onnxruntime: $*" >&2; }

case "$(uname -s)-$(uname -m)" in
Linux-x86_64) ;;
*) log "only linux-x64 is fetched automatically; set ONNXRUNTIME_LIB to your libonnxruntime"; exit 1 ;;
esac

if [ -n "${ONNXRUNTIME_LIB:-}" ]; then
	if [ ! -f "$ONNXRUNTIME_LIB" ]; then
		log "ONNXRUNTIME_LIB=$ONNXRUNTIME_LIB does not exist"
		exit 1
	fi
	echo "$ONNXRUNTIME_LIB"
	exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$CACHE"

# try_release NAME: download and unpack an official tarball into $tmp; fails quietly.
try_release() {
	local name=$1
	log "trying the official release $name.tgz"
	curl -fsSL --connect-timeout 10 --max-time 600 -o "$tmp/$name.tgz" "$RELEASE/$name.tgz" 2>/dev/null &&
		tar -xzf "$tmp/$name.tgz" -C "$tmp"
}

# npm_pack SPEC: fetch an npm package tarball into $tmp and unpack it under $tmp/npm.
npm_pack() {
	log "trying the npm registry: $1"
	command -v npm >/dev/null || { log "npm is not installed"; return 1; }
	(cd "$tmp" && npm pack --silent "$1" >/dev/null) || return 1
	rm -rf "$tmp/npm" && mkdir -p "$tmp/npm"
	tar -xzf "$tmp"/*.tgz -C "$tmp/npm" && rm -f "$tmp"/*.tgz
}

core=$CACHE/libonnxruntime.so
if [ ! -f "$core" ]; then
	if try_release "onnxruntime-linux-x64-$VERSION"; then
		cp -L "$tmp/onnxruntime-linux-x64-$VERSION/lib/libonnxruntime.so.$VERSION" "$core.part"
	elif npm_pack "$NPM_CPU"; then
		cp "$tmp/npm/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" "$core.part"
	else
		log "could not fetch ONNX Runtime $VERSION from GitHub or npm; set ONNXRUNTIME_LIB"
		exit 1
	fi
	mv "$core.part" "$core"
	ln -sf libonnxruntime.so "$CACHE/libonnxruntime.so.1"
	log "cached $core"
fi

if [ "$gpu" = 1 ]; then
	providers="libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so libonnxruntime_providers_tensorrt.so"
	missing=0
	for p in $providers; do [ -f "$CACHE/$p" ] || missing=1; done
	if [ "$missing" = 1 ]; then
		rm -rf "$tmp"/*
		if try_release "onnxruntime-linux-x64-gpu-$VERSION"; then
			src=$tmp/onnxruntime-linux-x64-gpu-$VERSION/lib
		elif npm_pack "$NPM_GPU"; then
			src=$tmp/npm/package/Plugins/Linux/x64
		else
			log "could not fetch the GPU provider libraries from GitHub or npm"
			exit 1
		fi
		for p in $providers; do cp -L "$src/$p" "$CACHE/$p.part" && mv "$CACHE/$p.part" "$CACHE/$p"; done
		log "cached the CUDA and TensorRT providers beside $core"
	fi
fi

echo "$core"
