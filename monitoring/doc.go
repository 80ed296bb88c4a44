// Package monitoring turns infergate's events into Prometheus metrics and
// watches the inputs and predictions of model versions for drift.
//
// A Monitor owns a registry of its own (never the global one) with the
// Go and process collectors and the infergate_* families. It implements
// the small hook interfaces that the layers of a request define:
// repository.Observer (loads, unloads, residency, and Attach, which
// gives each loaded version a VersionObserver whose metric children are
// resolved once, at load time), batching.Observer through that
// VersionObserver, and the gateway's RequestObserver and DriftReporter.
// cmd/infergate wires them; no other package imports this one.
//
// The hooks run on the request path, some under the batcher's mutex: they
// cost atomic adds on pre-resolved children, never block, take no lock
// of their own and do not allocate (BenchmarkRequestHooks). A version's
// series are deleted when it unloads, and kept while it is evicted.
//
// Drift: a version whose config.yaml has a monitoring.drift section gets
// a tracker. The request path copies the sampled rows of the watched
// tensors into a bounded queue (a full queue drops, counted in
// infergate_drift_dropped_total); one goroutine per tracker, stopped and
// waited for when the version unloads, bins them into fixed-size windows
// and compares them with the reference (the first rows, a reference
// file, or, through Compare, another version's live window). The
// statistics and the decision rule are those of package drift, whose doc
// states them exactly.
//
// This package must never import the protocol packages (gateway, grpc)
// or the router, and never decide anything about a request: it only
// observes.
package monitoring
