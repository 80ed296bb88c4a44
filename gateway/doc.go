// Package gateway speaks the KServe v2 / Open Inference Protocol over HTTP
// (fasthttp): health, server and model metadata, model configuration, and
// inference with JSON tensors or Triton's binary tensor extension.
//
// It decodes a request straight into the buffers ONNX Runtime reads,
// validates it against the served version's signature, runs it, and
// encodes the response. Every error reaches the client as a KServe error
// body, {"error": "..."}, with the status chosen in one place (statusOf):
//
//	400  malformed JSON, wrong datatype, shape or element count, missing
//	     input, unknown output, unknown parameter form
//	404  unknown model or version, unknown path
//	405  wrong method
//	413  body larger than Options.MaxRequestBodySize
//	429  the dynamic batcher's queue is full and its config asks for 429
//	     (with Retry-After)
//	500  ONNX Runtime failed while running the model (its message)
//	503  the model or version is not ready (the load failed: the reason),
//	     or the dynamic batcher's queue is full (with Retry-After)
//	504  the request's "timeout" parameter expired (in the batcher's
//	     queue, or while running without one)
//
// The package never keeps fasthttp's request body after a handler returns
// and never decides which version serves a request beyond the one named in
// the URL or the model's default.
package gateway
