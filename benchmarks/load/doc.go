// Package load is a load generator for any KServe v2 / Open Inference
// Protocol HTTP server: infergate, Triton, KServe, or the reference servers
// of the benchmark suite.
//
// A [Payload] is a set of request bodies built once before a run, JSON or
// in Triton's binary tensor extension, from random data shaped by the
// model's metadata ([RandomPayload]) or from a sample request file
// ([SamplePayload]). [Run] sends them over keep-alive connections with a
// fasthttp client, in one of two modes:
//
//   - closed loop: Concurrency workers, each sending its next request as
//     soon as the previous one is answered (perf_analyzer's
//     --concurrency-range, one level per Run);
//   - open loop: requests at a constant or Poisson Rate, whatever the
//     server does. Each request has an intended send time fixed before the
//     run ([Schedule]), and its latency is measured from that time, not
//     from when a worker got round to sending it: a stalled server delays
//     every request queued behind the stall, and the histogram shows it
//     (no coordinated omission).
//
// Latencies of 2xx answers go into HDR histograms (3 significant digits,
// 1 µs to 60 s). Non-2xx answers are counted apart, by status, and
// transport failures apart again; neither enters the latency figures. A run
// is a sequence of measurement windows: the first is a warm-up, then
// windows run until the last few agree within a stability bound (on
// throughput and p50), or a maximum is reached, and the result is those
// last windows merged. [RunFunc] applies the same windows to any function,
// which is how the suite measures ONNX Runtime in-process.
//
// Results write as JSON or CSV ([WriteJSON], [WriteCSV]); a progress line
// is drawn on a terminal. Every loop is bounded in time (MaxWindows) and,
// in open loop, in count.
//
// This package talks to servers only through the wire protocol and must
// never import infergate's server packages.
package load
