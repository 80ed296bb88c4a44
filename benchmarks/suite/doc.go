// Package suite runs infergate's standard benchmark suite: scenario files
// that each compare, on one model and in one run, the servers a user could
// put in front of it.
//
//   - onnxruntime: the model run in-process on ONNX Runtime, no HTTP (the
//     compute limit);
//   - transport: a fasthttp handler that reads the body and returns a fixed
//     answer (the transport limit: package transport);
//   - transport-grpc: grpc-go, tuned as infergate's listener, answering
//     ModelInfer with a fixed message (the gRPC transport limit);
//   - infergate and infergate-batching: the infergate binary with dynamic
//     batching off and on;
//   - infergate-grpc: infergate-batching's process over the KServe v2 gRPC
//     protocol, inputs as raw contents;
//   - handwritten: net/http + encoding/json + one ONNX Runtime call per
//     request (package handwritten);
//   - external: any KServe v2 server given by URL that serves the model.
//
// ONNX Runtime in-process runs first, on otherwise idle cores. Then every
// server starts as its own process (stopped with SIGTERM, then SIGKILL
// after a grace period; children also die with the suite), and the
// concurrency levels run with the servers interleaved: level by level,
// one server at a time, the order reversed every other level, so that
// background load that comes and goes on a shared machine falls on all of
// them alike. The load generator (package load) runs in the suite's
// process on the same cores: the figures are what a client on the machine
// sees, not what the server would do alone.
//
// infergate runs as users run it: metrics on, drift watching every output
// at the default sampling, the router in the path, and for each run the
// suite reads its infergate_batch_size histogram from /metrics before and
// after, for the mean rows per ONNX Runtime execution. The servers a
// scenario lists under open_loop also run once in an open loop of Poisson
// arrivals at a fraction (default 0.8) of their closed-loop capacity.
//
// A scenario file (YAML, strict) names the model, the protocol, the
// concurrency levels and the targets, each a comparison between measured
// points ("infergate-batching at concurrency 64 serves at least 0.8× the
// composite of the transport limit and ONNX Runtime at batch 64", the
// composite being 1/(1/a + 1/b), what a server doing both on the same
// cores can reach). Run returns the results and the targets' outcomes;
// package report writes them out. This package must never
// import infergate's server packages (gateway, batching, repository): it
// knows infergate only as a binary speaking the protocol.
package suite
