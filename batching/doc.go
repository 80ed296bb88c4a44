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
// One rule keeps batches full when a version has several instances:
// while another instance is running, a free instance starts a batch only
// when the queue holds at least MinFill rows (default a quarter of
// max_batch_size, DefaultMinFill). Below that the requests wait for the
// running batch to end, whose instance then takes them all at once, so
// some instance is always running while requests wait, and a request that
// finds every instance idle still runs at once, unwaited.
//
// Without the rule, the second instance of two starts at once on
// whatever trickled in while the first computed: on 2 cores it ran
// batches of 1 or 2 rows that cost nearly as much as batches of 30, and
// took the core the HTTP side needed. Measured with infergate-bench load,
// drift on, three servers side by side in alternating rounds (2 cores,
// 2 instances, max_batch_size 64):
//
//	model                   MinFill 1           MinFill 16          MinFill 32
//	512-2048-2048-10 c64    7.5k, 6.4k req/s    9.0k, 7.8k req/s    8.7k, 7.4k req/s
//	  rows per execution    7.6, 8.3            17.2, 17.4          24.2, 24.7
//	256-512-512-10 c64      18.5k, 22.4k        22.3k, 23.8k        22.2k, 29.4k
//	  rows per execution    1.5, 1.4            3.0, 3.0            3.1, 3.3
//	c1 p50 (2048, 256)      606-645, 135-137µs  596-651, 113-140µs  588-820, 134-159µs
//
// A quarter of the largest batch gained 19 to 23 % on the compute-bound
// model and 6 to 21 % on the light one, with the lone request unchanged;
// a half gained no more and waits longer. Other candidates (an instance
// count that follows the queue, one instance with every core's threads,
// ONNX Runtime's spinning off) have not been measured against it yet.
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
// finds it full is rejected at once with a *RejectError (503 with
// Retry-After, or 429 when configured). A request whose timeout expires
// while queued is removed and never run (timeout_action REJECT, the
// default: 504), or moved behind every request that has not expired
// (DELAY). A request already in a running batch completes.
//
// Executor puts the optional request coalescing and response cache in
// front of a Scheduler (or of a bare session, for versions without
// dynamic batching).
//
// This package must never import the protocol (gateway), routing or
// repository packages.
package batching
