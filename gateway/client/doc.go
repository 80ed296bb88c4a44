// Package client is a KServe v2 / Open Inference Protocol HTTP client,
// built on net/http, for infergate's end-to-end tests and its load tester.
//
// It speaks the protocol's JSON tensors and Triton's binary tensor
// extension (the Inference-Header-Content-Length header, little-endian
// row-major tensor bytes after the JSON, BYTES elements each prefixed by a
// 4-byte little-endian length). EncodeRequest and DecodeResponse are the
// pure codec; Client adds the HTTP calls: Infer, the health and metadata
// endpoints, and Do for raw requests such as deliberately malformed bodies.
//
// A non-2xx answer from Infer or the metadata calls is returned as *Error,
// carrying the status and the server's "error" text.
//
// The package favours clarity over speed (it encodes with encoding/json and
// copies what it decodes) and must never import the server packages it
// tests: it knows the server only through the wire protocol.
package client
