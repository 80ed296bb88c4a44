// Package runtime runs ONNX models on ONNX Runtime, through
// github.com/yalue/onnxruntime_go.
//
// An [Environment] wraps ONNX Runtime's process-wide environment: open it once
// with the path of libonnxruntime.so, then open one [Session] per model
// version. A Session is safe for concurrent use; it lets at most
// [SessionOptions.Instances] executions run at once, each on its own
// intra-op thread pool (one thread by default), which on a small CPU gives
// more throughput than one execution with many threads.
//
// Tensors cross this package as [Tensor] values: fixed-size elements in their
// little-endian binary form (the layout of the KServe binary tensor
// extension and of ONNX Runtime's own buffers), or strings for BYTES. Input
// data is handed to ONNX Runtime without conversion.
//
// This package knows nothing about HTTP, batching or model repositories, and
// must never import the packages above it.
package runtime
