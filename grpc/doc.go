// Package grpc serves the KServe v2 / Open Inference Protocol over gRPC:
// inference.GRPCInferenceService as Triton's grpc_service.proto defines
// it (package and service names included), so that Triton's and KServe's
// gRPC clients work unmodified. It shares everything below the protocol
// with package gateway: the router picks the version, the batcher runs
// the request, the repository answers the lifecycle calls, and the
// request observer (monitoring) counts it with protocol "grpc".
//
// Tensors come as raw_input_contents, which become the tensor's bytes
// without a copy when aligned, or as typed contents; outputs go back as
// raw_output_contents, as Triton sends them. Errors carry the kinds of
// package errdefs, mapped to gRPC codes in one function (codeOf).
package grpc
