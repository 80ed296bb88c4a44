# infergate container: the gateway binary plus ONNX Runtime 1.29.0.
#   docker build -t infergate .                                  # CPU, on debian:bookworm-slim
#   docker build --build-arg VARIANT=gpu -t infergate:gpu .      # CUDA 13 + cuDNN 9, with the CUDA and TensorRT providers
#   docker run -p 8000:8000 -v $PWD/models:/models:ro infergate
# No Docker engine runs in this project's CI: test/packaging checks this file with BuildKit's
# own parser (stages, COPY sources, user, ports, health check) instead of building it.

# cpu or gpu: which runtime stage the image is.
ARG VARIANT=cpu

FROM golang:1.26-bookworm AS build
ARG VARIANT
# Reported by /v2 and infergate version (the context has no .git): docker build --build-arg VERSION=$(git describe).
ARG VERSION=docker
RUN apt-get update && apt-get install -y --no-install-recommends npm ca-certificates && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The same script as make run: the official release, else npm; --gpu adds the provider libraries.
RUN if [ "$VARIANT" = gpu ]; then scripts/fetch-onnxruntime.sh --gpu; else scripts/fetch-onnxruntime.sh; fi && \
    mkdir -p /out/onnxruntime && cp -L .cache/onnxruntime/1.29.0/*.so /out/onnxruntime/ && \
    CGO_ENABLED=1 go build -trimpath -ldflags "-X main.version=$VERSION" -o /out/infergate ./cmd/infergate

FROM debian:bookworm-slim AS runtime-cpu
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*

# The provider libraries of onnxruntime-linux-x64-gpu-1.29.0 need CUDA 13 and cuDNN 9.
FROM nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04 AS runtime-gpu

FROM runtime-${VARIANT}
RUN groupadd --system --gid 10001 infergate && \
    useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin infergate
COPY --from=build /out/infergate /usr/local/bin/infergate
COPY --from=build /out/onnxruntime/ /opt/onnxruntime/
COPY configs/example-repository /models
COPY configs/infergate.yaml /etc/infergate/infergate.yaml
ENV ONNXRUNTIME_LIB=/opt/onnxruntime/libonnxruntime.so
# Numeric, so that Kubernetes' runAsNonRoot can check it.
USER 10001:10001
# HTTP (KServe v2, metrics); 8001 is for gRPC once it lands; 8002 for --metrics-port.
EXPOSE 8000 8001 8002
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["infergate", "healthcheck", "--url", "http://127.0.0.1:8000/v2/health/ready"]
ENTRYPOINT ["infergate", "serve"]
CMD ["--model-repository", "/models", "--http-port", "8000"]
