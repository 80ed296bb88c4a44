package batching

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/infergate/infergate/errdefs"
	"github.com/infergate/infergate/runtime"
)

// ExecutorOptions configure an Executor.
type ExecutorOptions struct {
	// Model and Version name the version, for cache keys.
	Model   string
	Version int64
	// Batching, when not nil, runs requests through a dynamic batching
	// Scheduler; nil runs each request alone on the session.
	Batching *Options
	// Coalesce runs identical concurrent requests once.
	Coalesce bool
	// Batched says the inputs' leading dimension is the batch: a run
	// without Batching then reports that many rows (Observer.BatchDone).
	Batched bool
	// Cache, when not nil, answers repeated requests from the response
	// cache.
	Cache *Cache
	// Observer receives cache lookups (and, through Batching, the
	// scheduler's events). Default: none.
	Observer Observer
}

// Executor runs the requests of one model version: response cache first,
// then coalescing, then the dynamic batcher or the session itself.
type Executor struct {
	// id keys this executor's cache entries: a reloaded version with the
	// same number gets a new executor, and never the old one's answers.
	id    uint64
	run   Runner
	opts  ExecutorOptions
	sched *Scheduler
	group *coalescer
	obs   Observer
	// waiting counts requests in or waiting for the session when there is
	// no scheduler: beyond DefaultMaxQueueSize more, they are refused.
	waiting atomic.Int64
}

// NewExecutor returns an Executor over run. Close releases it.
func NewExecutor(run Runner, opts ExecutorOptions) (*Executor, error) {
	e := &Executor{run: run, opts: opts, obs: opts.Observer}
	if opts.Cache != nil {
		e.id = opts.Cache.ids.Add(1)
	}
	if e.obs == nil {
		e.obs = nopObserver{}
	}
	if opts.Batching != nil {
		bo := *opts.Batching
		if bo.Observer == nil {
			bo.Observer = e.obs
		}
		s, err := NewScheduler(run, bo)
		if err != nil {
			return nil, err
		}
		e.sched = s
	}
	if opts.Coalesce {
		e.group = &coalescer{flights: map[cacheKey]*flight{}}
	}
	return e, nil
}

// Batching reports whether requests go through a dynamic batcher.
func (e *Executor) Batching() bool { return e.sched != nil }

// Admit returns the refusal a request would get now because the batch
// queue is full (see Scheduler.Admit), nil otherwise or without batching.
// With the response cache or coalescing it admits: a request may be
// answered without the queue, which Infer finds out after decoding. A
// nil Executor admits.
func (e *Executor) Admit() error {
	if e == nil || e.sched == nil || e.opts.Cache != nil || e.group != nil {
		return nil
	}
	return e.sched.Admit()
}

// Close stops the scheduler (failing queued requests) and drops the
// version's cached responses.
func (e *Executor) Close() {
	if e.sched != nil {
		e.sched.Close()
	}
	if e.opts.Cache != nil {
		e.opts.Cache.purge(e.id)
	}
}

// Infer runs req and returns the outputs at the given indexes, in that
// order; nil outputs returns all of them. The returned tensors may be
// shared with other requests: never modify them.
func (e *Executor) Infer(ctx context.Context, req Request, outputs []int) ([]runtime.Tensor, error) {
	e.obs.Inflight(1)
	defer e.obs.Inflight(-1)
	if e.opts.Cache == nil && e.group == nil {
		return e.infer(ctx, req, outputs)
	}
	k := e.key(req.Inputs, outputs)
	if e.opts.Cache != nil {
		if outs, ok := e.opts.Cache.get(k); ok {
			e.obs.CacheLookup(true)
			return outs, nil
		}
		e.obs.CacheLookup(false)
	}
	var (
		outs []runtime.Tensor
		err  error
	)
	if e.group == nil {
		outs, err = e.infer(ctx, req, outputs)
	} else {
		outs, err = e.group.do(ctx, k, e.obs, func(runCtx context.Context) ([]runtime.Tensor, error) {
			return e.infer(runCtx, req, outputs)
		})
	}
	if err == nil && e.opts.Cache != nil {
		// A copy: the outputs may be slices of a whole batch's buffers,
		// which the cache must not keep alive.
		e.opts.Cache.add(k, cloneTensors(outs))
	}
	return outs, err
}

func (e *Executor) infer(ctx context.Context, req Request, outputs []int) ([]runtime.Tensor, error) {
	var (
		outs []runtime.Tensor
		err  error
	)
	if e.sched != nil {
		outs, err = e.sched.Infer(ctx, req)
	} else {
		if e.waiting.Add(1) > DefaultMaxQueueSize {
			e.waiting.Add(-1)
			e.obs.Rejected("queue_full")
			return nil, &errdefs.Error{Kind: errdefs.Overloaded, RetryAfter: time.Second, Msg: fmt.Sprintf("more than %d requests wait for the model: retry later", DefaultMaxQueueSize)}
		}
		defer e.waiting.Add(-1)
		// req.Timeout is a queue policy of the dynamic batcher (Triton's
		// meaning): without one it does not apply. ctx, the request's
		// deadline, terminates the run.
		start := time.Now()
		outs, err = e.run.Run(ctx, req.Inputs)
		rows := 1
		if e.opts.Batched && len(req.Inputs) > 0 && len(req.Inputs[0].Shape) > 0 {
			rows = int(req.Inputs[0].Shape[0])
		}
		e.obs.BatchDone(rows, 1, time.Since(start), err) // one execution, as the scheduler reports its batches
	}
	if err != nil {
		return nil, err
	}
	e.obs.Served(req.Inputs, outs)
	if outputs == nil {
		return outs, nil
	}
	sel := make([]runtime.Tensor, len(outputs))
	for i, j := range outputs {
		if j < 0 || j >= len(outs) {
			return nil, fmt.Errorf("output index %d out of range", j)
		}
		sel[i] = outs[j]
	}
	return sel, nil
}

func cloneTensors(in []runtime.Tensor) []runtime.Tensor {
	out := make([]runtime.Tensor, len(in))
	for i, t := range in {
		out[i] = t
		out[i].Shape = slices.Clone(t.Shape)
		out[i].Data = slices.Clone(t.Data)
		out[i].Strings = slices.Clone(t.Strings)
	}
	return out
}

// cacheKey identifies a response: the executor (one per loaded version)
// and a SHA-256 of the model, version, inputs and requested outputs.
type cacheKey struct {
	executor uint64
	sum      [sha256.Size]byte
}

func (e *Executor) key(inputs []runtime.Tensor, outputs []int) cacheKey {
	h := sha256.New()
	var n [8]byte
	writeInt := func(h hash.Hash, v int64) {
		binary.LittleEndian.PutUint64(n[:], uint64(v))
		h.Write(n[:])
	}
	writeInt(h, int64(len(e.opts.Model)))
	h.Write([]byte(e.opts.Model))
	writeInt(h, e.opts.Version)
	writeInt(h, int64(len(inputs)))
	for _, t := range inputs {
		writeInt(h, int64(t.DataType))
		writeInt(h, int64(len(t.Shape)))
		for _, d := range t.Shape {
			writeInt(h, d)
		}
		if t.DataType == runtime.Bytes {
			for _, s := range t.Strings {
				writeInt(h, int64(len(s)))
				h.Write([]byte(s))
			}
		} else {
			writeInt(h, int64(len(t.Data)))
			h.Write(t.Data)
		}
	}
	// nil (all outputs) and an explicit list differ.
	writeInt(h, int64(len(outputs)))
	if outputs == nil {
		writeInt(h, -1)
	}
	for _, o := range outputs {
		writeInt(h, int64(o))
	}
	k := cacheKey{executor: e.id}
	h.Sum(k.sum[:0])
	return k
}

// Cache is the response cache shared by every model that enables it: an
// LRU of successful responses, bounded by entry count.
type Cache struct {
	lru *lru.Cache[cacheKey, []runtime.Tensor]
	ids atomic.Uint64 // executor ids
}

// NewCache returns a cache of at most entries responses.
func NewCache(entries int) (*Cache, error) {
	c, err := lru.New[cacheKey, []runtime.Tensor](entries)
	if err != nil {
		return nil, fmt.Errorf("response cache: %w", err)
	}
	return &Cache{lru: c}, nil
}

func (c *Cache) get(k cacheKey) ([]runtime.Tensor, bool) { return c.lru.Get(k) }

func (c *Cache) add(k cacheKey, outs []runtime.Tensor) { c.lru.Add(k, outs) }

// Len returns the number of cached responses.
func (c *Cache) Len() int { return c.lru.Len() }

// purge drops every cached response of an executor.
func (c *Cache) purge(id uint64) {
	for _, k := range c.lru.Keys() {
		if k.executor == id {
			c.lru.Remove(k)
		}
	}
}

// coalescer runs identical concurrent requests once: a request whose key
// is already in flight waits for that flight's result.
type coalescer struct {
	mu      sync.Mutex
	flights map[cacheKey]*flight
}

type flight struct {
	done chan struct{} // closed when outs and err are set
	outs []runtime.Tensor
	err  error
	// waiting counts the requests that still wait for the flight, the
	// leader's included; guarded by coalescer.mu. When it reaches 0 the
	// run is cancelled (cancel): nobody wants its answer.
	waiting int
	cancel  context.CancelFunc
}

// leave tells f that one of its requests no longer waits.
func (c *coalescer) leave(f *flight) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.waiting--; f.waiting == 0 {
		f.cancel()
	}
}

// do runs run once for the requests of key k in flight together. The run
// is shared: it is not bound by the leader's context alone, but
// cancelled once every request has left (its deadline passed, or its
// client went away). A panic in run fails the flight, its followers
// included, with an error instead of leaving them waiting: the flight
// ends whatever happens.
func (c *coalescer) do(ctx context.Context, k cacheKey, obs Observer, run func(context.Context) ([]runtime.Tensor, error)) (outs []runtime.Tensor, err error) {
	c.mu.Lock()
	if f, ok := c.flights[k]; ok && f.waiting > 0 { // not a cancelled one
		f.waiting++
		c.mu.Unlock()
		obs.Coalesced()
		select {
		case <-f.done:
			return f.outs, f.err
		case <-ctx.Done():
			c.leave(f)
			return nil, ctx.Err()
		}
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	f := &flight{done: make(chan struct{}), waiting: 1, cancel: cancel}
	c.flights[k] = f
	c.mu.Unlock()
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() { c.leave(f) })
		defer stop()
	}
	defer func() {
		if p := recover(); p != nil {
			f.outs, f.err = nil, fmt.Errorf("run panicked: %v", p)
		}
		c.mu.Lock()
		if c.flights[k] == f { // a later flight may have replaced a cancelled one
			delete(c.flights, k)
		}
		c.mu.Unlock()
		close(f.done)
		outs, err = f.outs, f.err
		if err != nil && ctx.Err() != nil {
			outs, err = nil, fmt.Errorf("coalesced run: %w", ctx.Err()) // the leader's own deadline
		}
	}()
	f.outs, f.err = run(runCtx)
	return f.outs, f.err
}
