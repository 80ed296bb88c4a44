// Package batching decides when a request runs: it merges concurrent
// requests to one model version into batches along axis 0, runs them on
// the version's execution instances, and splits the outputs back.
//
// # The scheduling rule
//
// A Scheduler lets as many batches run at once as the version has
// execution instances. Requests wait in priority queues (level 1 first,
// FIFO within a level). Whenever an instance is free and a request is
// queued, a batch is taken at once: the oldest request of the highest
// priority, plus every later queued request whose non-batch dimensions
// match it, in queue order, while the rows fit in max_batch_size. No timer
// delays that batch: a lone request on an idle server runs at once, on its
// own goroutine. Batches grow only because requests arrive while every
// instance is busy; when an instance frees up it takes all of them
// together.
//
// # Filling batches under load
//
// One rule keeps batches full when a version has several instances. The
// scheduler measures its batches: the compute time per row, a moving
// average for each power-of-two class of batch sizes (1, 2-3, 4-7, ...).
// While another instance is running, a free instance starts a batch only
// when that batch's class is unmeasured or costs at most HoldFactor
// (default 2) times the cheapest class per row. Otherwise the requests
// wait for more rows or for the running batch to end, whose instance then
// takes them all at once: some instance is always running while requests
// wait, and a request that finds every instance idle still runs at once,
// unwaited.
//
// Without the rule, the second instance of two starts at once on
// whatever trickled in while the first computed: on 2 cores it ran
// batches of 1 or 2 rows of a model whose rows cost 10 times less at
// batch 64, and took the core the HTTP side needed. Models whose rows
// cost the same at any batch size (PaddleOCR's classifier) are not held.
// Measured with infergate-bench load, drift on, servers side by side in
// alternating rounds (2 cores, 2 instances, max_batch_size 64):
//
//	                              never hold            HoldFactor 2
//	512-2048-2048-10 MLP, c64     7.23k, 7.20k req/s    8.05k, 7.99k req/s
//	  rows per execution          7.7, 7.3              16.8, 16.0
//	PaddleOCR, binary, c4         1.28k, 1.13k          1.21k, 1.30k
//	  rows per execution          1.1, 1.1              1.1, 1.1
//	PaddleOCR, c1 p50             919, 1012µs           1013, 999µs
//
// A fixed fill, a quarter of max_batch_size, was measured first: it gave
// the MLPs as much (2048 MLP c64 +19 to 23 %, 256 MLP +6 to 21 %), but
// cut PaddleOCR at concurrency 4 to 1.02k images/s in the suite (1.34k
// with this rule), where 16 rows never queue, so the second instance
// never ran. Other candidates (an instance count that
// follows the queue, one instance with every core's threads, ONNX
// Runtime's spinning off) have not been measured against it.
//
// The one exception is preferred_batch_size. When it is set, a worker
// sends the largest preferred size the queue can fill; when the queue
// cannot fill even the smallest, the worker holds the requests back until
// enough rows arrive or the oldest request has waited
// max_queue_delay_microseconds, then sends what there is. Without
// preferred sizes, max_queue_delay_microseconds is never used: a Triton
// user who set it to trade latency for batch size gets the batch sizes
// without the latency.
//
// # Bounds and failures
//
// The queue holds at most max_queue_size requests (default
// DefaultMaxQueueSize; unlike Triton, never unbounded). A request that
// finds it full is rejected at once with an errdefs.Overloaded error
// (HTTP 503 with Retry-After), or errdefs.Throttled (429) when
// configured. The protocols ask Executor.Admit first, before they decode
// a request's body, so that a refusal under overload costs no decoding:
// a request, even a malformed one, then gets the queue-full refusal; one
// refused so is not counted in the router's decisions or a rollout's
// figures, having never held its version. A version with the response
// cache or coalescing is not checked early: such a request may be
// answered without the queue.
// A request whose timeout expires
// while queued is removed and never run (timeout_action REJECT, the
// default: errdefs.Timeout, 504), or moved behind every request that has not expired
// (DELAY). A request already in a running batch completes.
//
// Executor puts the optional request coalescing and response cache in
// front of a Scheduler (or of a bare session, for versions without
// dynamic batching).
//
// This package must never import the protocol (gateway), routing or
// repository packages.
package batching
