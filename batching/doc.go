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
