# infergate container: the gateway binary plus ONNX Runtime 1.29.0 (CPU).
#   docker build -t infergate .
#   docker run -p 8000:8000 -v $PWD/models:/models infergate
FROM golang:1.26-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends npm ca-certificates && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN scripts/fetch-onnxruntime.sh && \
    CGO_ENABLED=1 go build -ldflags "-X main.version=$(git describe --tags --always 2>/dev/null || echo docker)" -o /out/infergate ./cmd/infergate

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 infergate
COPY --from=build /out/infergate /usr/local/bin/infergate
COPY --from=build /src/.cache/onnxruntime/1.29.0/libonnxruntime.so /usr/local/lib/libonnxruntime.so
COPY configs/example-repository /models
ENV ONNXRUNTIME_LIB=/usr/local/lib/libonnxruntime.so
USER infergate
EXPOSE 8000
ENTRYPOINT ["infergate", "serve"]
CMD ["--model-repository", "/models", "--http-port", "8000"]
