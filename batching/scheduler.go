package batching

import (
	"context"
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/infergate/infergate/errdefs"
	"github.com/infergate/infergate/runtime"
)

// DefaultHoldFactor is the default Options.HoldFactor.
const DefaultHoldFactor = 2.0

// DefaultMaxQueueSize bounds a queue whose max_queue_size is 0.
const DefaultMaxQueueSize = 1024

// Runner runs a batch; *runtime.Session is one.
type Runner interface {
	Run(ctx context.Context, inputs []runtime.Tensor) ([]runtime.Tensor, error)
}

// Observer receives the events of one model version's executor and
// scheduler; the monitoring package turns them into metrics. Its methods
// are called on the request path, some under the scheduler's mutex: they
// must be fast, never block, take no lock, and be safe for concurrent use.
type Observer interface {
	// QueueDepth reports the number of queued requests after a change.
	QueueDepth(n int)
	// Rejected counts a request refused ("queue_full") or expired in the
	// queue ("timeout").
	Rejected(reason string)
	// Dispatched reports how long a request waited in the queue.
	Dispatched(queued time.Duration)
	// BatchDone reports a batch's rows, requests and compute time.
	BatchDone(rows, requests int, compute time.Duration, err error)
	// CacheLookup counts a response cache hit or miss.
	CacheLookup(hit bool)
	// Coalesced counts a request that joined an identical one in flight.
	Coalesced()
	// Inflight reports a request entering (+1) or leaving (-1) the
	// executor.
	Inflight(delta int)
	// Served reports the inputs and every output (in the model's order) of
	// a request the model ran successfully; not called for answers from
	// the response cache or a coalesced flight, which repeat a run
	// already reported. The tensors may be shared with other requests and
	// are valid only during the call: copy what is kept.
	Served(inputs, outputs []runtime.Tensor)
}

// Options configure a Scheduler, with Triton's dynamic_batching meaning.
type Options struct {
	// MaxBatchSize is the most rows a batch may have. Required.
	MaxBatchSize int
	// Instances is how many batches run at once: the session's instance
	// count. Default 1.
	Instances int
	// PreferredBatchSizes, when set, are the batch sizes to aim for; see
	// the package doc.
	PreferredBatchSizes []int
	// MaxQueueDelay bounds how long requests are held back to fill a
	// preferred batch size. Unused without PreferredBatchSizes.
	MaxQueueDelay time.Duration
	// MaxQueueSize bounds the queued requests. Default DefaultMaxQueueSize.
	MaxQueueSize int
	// DefaultTimeout is the queue timeout of a request that gives none.
	// 0: none.
	DefaultTimeout time.Duration
	// AllowTimeoutOverride lets a request set its own queue timeout, as in
	// Triton: one smaller than DefaultTimeout, or any when DefaultTimeout
	// is 0. Default false: requests' timeouts are ignored.
	AllowTimeoutOverride bool
	// DelayOnTimeout keeps an expired request queued behind the others
	// (timeout_action DELAY) instead of rejecting it (REJECT, default).
	DelayOnTimeout bool
	// PriorityLevels is the number of priority levels (1 is highest).
	// 0: one level, and requests' priorities are ignored.
	PriorityLevels int
	// DefaultPriority is the level of a request that gives none (Triton's
	// default_priority_level). Default: the lowest level.
	DefaultPriority int
	// RejectKind is the kind of a full-queue rejection:
	// errdefs.Overloaded (default; HTTP 503) or errdefs.Throttled (429).
	RejectKind errdefs.Kind
	// RetryAfter is the Retry-After of a full-queue rejection. Default 1s.
	RetryAfter time.Duration
	// HoldFactor holds a batch back while another instance is running
	// when its measured cost per row is more than HoldFactor times the
	// best measured; see the package doc. Default DefaultHoldFactor;
	// negative: every free instance starts at once.
	HoldFactor float64
	// Observer receives events. Default: none.
	Observer Observer
}

func (o Options) withDefaults() (Options, error) {
	if o.MaxBatchSize < 1 {
		return o, fmt.Errorf("max batch size must be positive, got %d", o.MaxBatchSize)
	}
	if o.Instances < 1 {
		o.Instances = 1
	}
	if o.MaxQueueSize <= 0 {
		o.MaxQueueSize = DefaultMaxQueueSize
	}
	if o.PriorityLevels < 0 {
		return o, fmt.Errorf("priority levels must not be negative, got %d", o.PriorityLevels)
	}
	levels := max(o.PriorityLevels, 1)
	if o.DefaultPriority == 0 {
		o.DefaultPriority = levels
	}
	if o.DefaultPriority < 1 || o.DefaultPriority > levels {
		return o, fmt.Errorf("default priority level %d is outside 1..%d", o.DefaultPriority, levels)
	}
	for _, p := range o.PreferredBatchSizes {
		if p < 1 || p > o.MaxBatchSize {
			return o, fmt.Errorf("preferred batch size %d is outside 1..%d", p, o.MaxBatchSize)
		}
	}
	if o.RejectKind == errdefs.Internal {
		o.RejectKind = errdefs.Overloaded
	}
	if o.RejectKind != errdefs.Overloaded && o.RejectKind != errdefs.Throttled {
		return o, fmt.Errorf("reject kind must be overloaded or throttled, got %v", o.RejectKind)
	}
	if o.RetryAfter <= 0 {
		o.RetryAfter = time.Second
	}
	if o.HoldFactor == 0 {
		o.HoldFactor = DefaultHoldFactor
	}
	if o.Observer == nil {
		o.Observer = nopObserver{}
	}
	return o, nil
}

type nopObserver struct{}

func (nopObserver) QueueDepth(int)                           {}
func (nopObserver) Rejected(string)                          {}
func (nopObserver) Dispatched(time.Duration)                 {}
func (nopObserver) BatchDone(int, int, time.Duration, error) {}
func (nopObserver) CacheLookup(bool)                         {}
func (nopObserver) Coalesced()                               {}
func (nopObserver) Inflight(int)                             {}
func (nopObserver) Served(_, _ []runtime.Tensor)             {}

// Request is one request to a Scheduler.
type Request struct {
	// Inputs in the model's order; each has the batch dimension first.
	Inputs []runtime.Tensor
	// Priority is the request's level, 1 highest; 0 takes the default.
	Priority int
	// Timeout is the request's own queue timeout; 0 gives none.
	Timeout time.Duration
}

type result struct {
	outputs []runtime.Tensor
	err     error
}

// pending is a queued request.
type pending struct {
	inputs    []runtime.Tensor
	rows      int
	key       string // non-batch dims of every input: only equal keys batch together
	level     int    // queue index: priority-1, or the delayed queue
	enqueued  time.Time
	queued    bool        // in a queue; guarded by Scheduler.mu
	run       *batchRun   // the run of the batch it was taken into; set once, under Scheduler.mu
	abandoned bool        // no longer waits for run; guarded by Scheduler.mu
	done      chan result // size 1: the worker never blocks on it
}

// batchRun is one execution of a batch. Its context is cancelled, which
// terminates the run through ONNX Runtime, once every request of the
// batch has gone (its deadline passed, or its client left): nobody waits
// for the answer any more. It lives as long as the run, which is why it
// holds a context.
type batchRun struct {
	ctx    context.Context
	cancel context.CancelFunc
	left   int // requests still waiting; guarded by Scheduler.mu
	// copied is closed once the run has copied the requests' inputs
	// (merge, for a batch of several), after which a request that leaves
	// may return before the run ends: its memory is no longer read.
	copied chan struct{}
}

// bindLocked makes b one run.
func bindLocked(b []*pending) {
	if b == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &batchRun{ctx: ctx, cancel: cancel, left: len(b), copied: make(chan struct{})}
	for _, p := range b {
		p.run = r
	}
}

// abandon tells p's run, if it is in one, that p no longer waits for it,
// and returns the run's copied channel (nil without a run).
func (s *Scheduler) abandon(p *pending) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := p.run
	if r == nil {
		return nil
	}
	if !p.abandoned {
		p.abandoned = true
		if r.left--; r.left == 0 {
			r.cancel()
		}
	}
	return r.copied
}

// Scheduler is the dynamic batcher of one model version.
//
// It holds one token per execution instance. The goroutine that finds a
// free token takes a batch and runs it itself: a request that arrives at an
// idle server runs on its own goroutine, with no hand-off. After a batch,
// if requests queued meanwhile, the next batch runs on a new goroutine
// that keeps the token and drains the queue, so the finished requests
// return at once and the instance never idles while requests wait.
type Scheduler struct {
	run  Runner
	opts Options
	obs  Observer

	mu      sync.Mutex
	queues  [][]*pending // per priority level, then the delayed queue
	queued  atomic.Int64 // requests in the queues: changed under mu, read by Admit without it
	idle    int          // free tokens
	closed  bool
	timer   *time.Timer // preferred-size hold-back
	timerAt time.Time

	cost    costModel      // guarded by mu
	wg      sync.WaitGroup // batches running; Add under mu while !closed
	buffers bufferPool     // merged input buffers
	lastKey atomic.Pointer[shapeKey]
}

// NewScheduler starts a scheduler running batches on run. Close stops it.
func NewScheduler(run Runner, opts Options) (*Scheduler, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Scheduler{
		run:    run,
		opts:   opts,
		obs:    opts.Observer,
		queues: make([][]*pending, max(opts.PriorityLevels, 1)+1),
		idle:   opts.Instances,
	}
	return s, nil
}

// Close fails the queued requests with runtime.ErrClosed and waits for the running
// batches.
func (s *Scheduler) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
	}
	for i, q := range s.queues {
		for _, p := range q {
			p.queued = false
			p.done <- result{err: runtime.ErrClosed}
		}
		s.queues[i] = nil
	}
	s.queued.Store(0)
	s.mu.Unlock()
	s.wg.Wait()
}

// Infer queues req, waits for its batch and returns its outputs.
func (s *Scheduler) Infer(ctx context.Context, req Request) ([]runtime.Tensor, error) {
	p, err := s.newPending(req)
	if err != nil {
		return nil, err
	}
	timeout := s.opts.DefaultTimeout
	if req.Timeout > 0 && s.opts.AllowTimeoutOverride && (timeout == 0 || req.Timeout < timeout) {
		timeout = req.Timeout
	}
	if err := s.enqueue(ctx, p); err != nil {
		return nil, err
	}
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	for {
		select {
		case r := <-p.done:
			if r.err != nil && ctx.Err() != nil {
				// Its run was terminated because it left.
				return nil, fmt.Errorf("waiting for its batch to run: %w", ctx.Err())
			}
			return r.outputs, r.err
		case <-ctx.Done():
			if s.remove(p) {
				return nil, ctx.Err()
			}
			// Already in a batch: its run is terminated once no request
			// of it waits, else it completes without this one, which
			// returns once the run no longer reads its inputs.
			copied := s.abandon(p)
			select {
			case <-p.done:
			case <-copied:
			}
			return nil, fmt.Errorf("waiting for its batch to run: %w", ctx.Err())
		case <-expired:
			expired = nil
			if s.opts.DelayOnTimeout {
				s.delay(ctx, p)
				continue
			}
			if s.remove(p) {
				s.obs.Rejected("timeout")
				return nil, errdefs.New(errdefs.Timeout, "request timed out after %s in the queue", timeout)
			}
		}
	}
}

func (s *Scheduler) newPending(req Request) (*pending, error) {
	if len(req.Inputs) == 0 {
		return nil, errdefs.New(errdefs.Invalid, "no inputs")
	}
	levels := max(s.opts.PriorityLevels, 1)
	level := s.opts.DefaultPriority
	if req.Priority != 0 && s.opts.PriorityLevels > 0 {
		if req.Priority < 1 || req.Priority > levels {
			return nil, fmt.Errorf("%w: priority %d is outside 1..%d", runtime.ErrInvalidInput, req.Priority, levels)
		}
		level = req.Priority
	}
	rows := int64(-1)
	for _, t := range req.Inputs {
		if len(t.Shape) == 0 {
			return nil, fmt.Errorf("%w: input %q has no batch dimension", runtime.ErrInvalidInput, t.Name)
		}
		if rows >= 0 && t.Shape[0] != rows {
			return nil, fmt.Errorf("%w: inputs have different batch sizes", runtime.ErrInvalidInput)
		}
		rows = t.Shape[0]
	}
	if rows < 1 || rows > int64(s.opts.MaxBatchSize) {
		return nil, fmt.Errorf("%w: batch size %d is outside 1..%d", runtime.ErrInvalidInput, rows, s.opts.MaxBatchSize)
	}
	return &pending{
		inputs: req.Inputs,
		rows:   int(rows),
		key:    s.key(req.Inputs),
		level:  level - 1,
		done:   make(chan result, 1),
	}, nil
}

// shapeKey is a batch key and the non-batch dimensions it was made from.
type shapeKey struct {
	dims [][]int64
	key  string
}

// key returns the batch key of inputs: their non-batch dimensions, equal
// for requests that may share a batch. A model of fixed shapes gives the
// same key to every request, so the last one is kept and reused without
// building a string.
func (s *Scheduler) key(inputs []runtime.Tensor) string {
	if k := s.lastKey.Load(); k != nil && len(k.dims) == len(inputs) {
		same := true
		for i, t := range inputs {
			if !slices.Equal(k.dims[i], t.Shape[1:]) {
				same = false
				break
			}
		}
		if same {
			return k.key
		}
	}
	var b strings.Builder
	k := &shapeKey{dims: make([][]int64, len(inputs))}
	for i, t := range inputs {
		k.dims[i] = slices.Clone(t.Shape[1:])
		for _, d := range t.Shape[1:] {
			b.WriteString(strconv.FormatInt(d, 10))
			b.WriteByte(',')
		}
		b.WriteByte(';')
	}
	k.key = b.String()
	s.lastKey.Store(k)
	return k.key
}

// Admit returns the error a request would get now for a full queue, nil
// while it has room: a protocol checks it before reading and decoding a
// request, so that refusals under overload cost next to nothing. The
// queue may fill or drain before the request is queued; enqueue checks
// again.
func (s *Scheduler) Admit() error {
	if s.queued.Load() >= int64(s.opts.MaxQueueSize) {
		return s.rejectFull()
	}
	return nil
}

// rejectFull counts and returns a full-queue refusal.
func (s *Scheduler) rejectFull() error {
	s.obs.Rejected("queue_full")
	return &errdefs.Error{
		Kind:       s.opts.RejectKind,
		RetryAfter: s.opts.RetryAfter,
		Msg:        fmt.Sprintf("queue is full (%d requests): retry later", s.opts.MaxQueueSize),
	}
}

// addQueuedLocked changes the queued count by n and reports it.
func (s *Scheduler) addQueuedLocked(n int) {
	s.obs.QueueDepth(int(s.queued.Add(int64(n))))
}

// enqueue queues p and may run a batch on the calling goroutine
// (dispatchLocked), which p's ctx bounds as long as p is in it.
func (s *Scheduler) enqueue(ctx context.Context, p *pending) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return runtime.ErrClosed
	}
	if s.queued.Load() >= int64(s.opts.MaxQueueSize) {
		s.mu.Unlock()
		return s.rejectFull()
	}
	p.enqueued = time.Now()
	p.queued = true
	s.queues[p.level] = append(s.queues[p.level], p)
	s.addQueuedLocked(1)
	s.dispatchLocked(ctx, p) // unlocks
	return nil
}

// dispatchLocked runs a batch on the calling goroutine if a token is free
// and the queue has a batch to give: inline for a request's goroutine
// (see runBatches), self, whose context is ctx (nil for none). It is
// called with s.mu held and unlocks it.
func (s *Scheduler) dispatchLocked(ctx context.Context, self *pending) {
	s.startLocked(ctx, self, true)
}

// startLocked takes a batch and runs it (runBatches). When the batch is
// self alone, self's context is the run's, with nothing to set up (an
// idle server's request); otherwise the batch gets a run of its own
// (bindLocked), which self, running it inline, still abandons when ctx
// ends.
func (s *Scheduler) startLocked(ctx context.Context, self *pending, inline bool) {
	if s.idle == 0 || s.closed {
		s.mu.Unlock()
		return
	}
	b := s.takeLocked(time.Now(), s.opts.Instances-s.idle)
	if b == nil {
		s.mu.Unlock()
		return
	}
	own := self != nil && len(b) == 1 && b[0] == self
	if !own {
		bindLocked(b)
	}
	s.idle--
	s.wg.Add(1)
	s.mu.Unlock()
	var runCtx context.Context
	switch {
	case own:
		runCtx = ctx
	default:
		runCtx = b[0].run.ctx
		if self != nil && ctx.Done() != nil && slices.Contains(b, self) {
			stop := context.AfterFunc(ctx, func() { s.abandon(self) })
			defer stop()
		}
	}
	s.runBatches(runCtx, b, inline)
}

// runBatches runs b, then keeps the token for the batches queued
// meanwhile: on a new goroutine when called from a request's goroutine
// (inline), so that the request returns, or on this one otherwise. It
// returns the token when the queue is empty. s.wg counts it.
func (s *Scheduler) runBatches(ctx context.Context, b []*pending, inline bool) {
	for {
		rows, took, ok := s.execute(ctx, b)
		s.mu.Lock()
		if ok {
			s.cost.add(rows, took)
		}
		if !s.closed {
			b = s.takeLocked(time.Now(), s.opts.Instances-s.idle-1)
			bindLocked(b)
		} else {
			b = nil
		}
		if b == nil {
			s.idle++
			s.mu.Unlock()
			s.wg.Done()
			return
		}
		ctx = b[0].run.ctx
		if !inline {
			s.mu.Unlock()
			continue
		}
		s.wg.Add(1) // for the new goroutine; this one's count ends below
		s.mu.Unlock()
		go s.runBatches(ctx, b, false)
		s.wg.Done()
		return
	}
}

// remove takes p out of its queue; false if it is no longer queued.
func (s *Scheduler) remove(p *pending) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !p.queued {
		return false
	}
	q := s.queues[p.level]
	for i, x := range q {
		if x == p {
			s.queues[p.level] = append(q[:i:i], q[i+1:]...)
			break
		}
	}
	p.queued = false
	s.addQueuedLocked(-1)
	return true
}

// delay moves p behind every request that has not expired.
func (s *Scheduler) delay(ctx context.Context, p *pending) {
	if !s.remove(p) {
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		p.done <- result{err: runtime.ErrClosed}
		return
	}
	p.level = len(s.queues) - 1
	p.queued = true
	s.queues[p.level] = append(s.queues[p.level], p)
	s.addQueuedLocked(1)
	s.dispatchLocked(ctx, p)
}

// takeLocked removes and returns the next batch, or nil when the queue is
// empty or the batch is held back: for a preferred size, or, while others
// (the number of other instances running) is not 0, for a batch whose
// measured cost per row is over HoldFactor times the best.
func (s *Scheduler) takeLocked(now time.Time, others int) []*pending {
	var head *pending
	for _, q := range s.queues {
		if len(q) > 0 {
			head = q[0]
			break
		}
	}
	if head == nil {
		return nil
	}
	if others > 0 && s.opts.HoldFactor > 0 && len(s.opts.PreferredBatchSizes) == 0 {
		// Held requests wait for more rows or for a running batch to end,
		// whose instance then takes them: one always runs while they wait.
		rows := 0
	count:
		for _, q := range s.queues {
			for _, p := range q {
				if p.key == head.key {
					if rows += p.rows; rows >= s.opts.MaxBatchSize {
						break count // a full batch: no need to count on
					}
				}
			}
		}
		if !s.cost.worth(min(rows, s.opts.MaxBatchSize), s.opts.HoldFactor) {
			return nil
		}
	}
	limit := s.opts.MaxBatchSize
	if len(s.opts.PreferredBatchSizes) > 0 {
		avail := 0
		for _, q := range s.queues {
			for _, p := range q {
				if p.key == head.key {
					avail += p.rows
				}
			}
		}
		// The largest preferred size the queue can fill that still takes
		// the head request (which always goes first).
		target := 0
		for _, pref := range s.opts.PreferredBatchSizes {
			if pref <= avail && pref >= head.rows && pref > target {
				target = pref
			}
		}
		if target == 0 {
			deadline := head.enqueued.Add(s.opts.MaxQueueDelay)
			if now.Before(deadline) {
				s.holdUntilLocked(deadline)
				return nil
			}
		} else {
			limit = target
		}
	}
	var batch []*pending
	rows := 0
	for li, q := range s.queues {
		kept := q[:0]
		for i, p := range q {
			if rows == limit {
				kept = append(kept, q[i:]...)
				break
			}
			if p.key != head.key || rows+p.rows > limit {
				kept = append(kept, p)
				continue
			}
			batch = append(batch, p)
			rows += p.rows
			p.queued = false
		}
		clear(q[len(kept):])
		s.queues[li] = kept
	}
	s.addQueuedLocked(-len(batch))
	for _, p := range batch {
		s.obs.Dispatched(now.Sub(p.enqueued))
	}
	return batch
}

// holdUntilLocked arms the timer that dispatches held-back requests.
func (s *Scheduler) holdUntilLocked(t time.Time) {
	if s.timer != nil && !s.timerAt.After(t) && s.timerAt.After(time.Now()) {
		return // an earlier wake-up is armed
	}
	s.timerAt = t
	d := time.Until(t)
	if s.timer == nil {
		s.timer = time.AfterFunc(d, s.wake)
		return
	}
	s.timer.Reset(d)
}

// wake runs held-back requests whose delay is over; it runs on the
// timer's goroutine.
func (s *Scheduler) wake() {
	s.mu.Lock()
	s.startLocked(nil, nil, false)
}

func (s *Scheduler) fail(b []*pending, err error) {
	for _, p := range b {
		p.done <- result{err: err}
	}
}

// execute merges the batch's inputs along axis 0, runs them, and splits
// the outputs back to each request. A panic fails the batch's requests
// instead of losing the instance.
//
// It returns the batch's rows and compute time, ok when it ran.
func (s *Scheduler) execute(ctx context.Context, b []*pending) (rows int, took time.Duration, ok bool) {
	answered := false
	defer func() {
		if p := recover(); p != nil && !answered {
			s.fail(b, fmt.Errorf("batch of %d requests: panic: %v", len(b), p))
		}
	}()
	rows, took, ok = s.executeBatch(ctx, b)
	answered = true
	return rows, took, ok
}

// executeBatch runs b under ctx: its run's, or its one request's.
func (s *Scheduler) executeBatch(ctx context.Context, b []*pending) (int, time.Duration, bool) {
	rows := 0
	for _, p := range b {
		rows += p.rows
	}
	inputs := b[0].inputs
	run := b[0].run // nil for a request's own
	if run != nil {
		defer run.cancel()
	}
	var bufs []*[]byte
	if len(b) > 1 {
		inputs, bufs = s.buffers.merge(b, rows)
		close(run.copied)
	}
	start := time.Now()
	outs, err := s.run.Run(ctx, inputs)
	took := time.Since(start)
	s.obs.BatchDone(rows, len(b), took, err)
	for _, buf := range bufs {
		s.buffers.put(buf)
	}
	if err == nil {
		err = checkOutputs(outs, rows)
	}
	if err != nil {
		s.fail(b, err)
		return rows, took, false
	}
	if len(b) == 1 {
		b[0].done <- result{outputs: outs}
		return rows, took, true
	}
	parts := split(outs, b)
	for i, p := range b {
		p.done <- result{outputs: parts[i]}
	}
	return rows, took, true
}

// costModel is what a scheduler has measured of its batches: the compute
// time per row, a moving average for each power-of-two class of batch
// sizes (1, 2-3, 4-7, ...).
type costModel struct {
	perRow [32]float64 // seconds; 0: not measured
}

// costWeight is the weight of the newest batch in a class's average.
const costWeight = 0.2

func costClass(rows int) int { return bits.Len(uint(rows)) - 1 }

func (c *costModel) add(rows int, took time.Duration) {
	if rows < 1 || took <= 0 {
		return
	}
	x := took.Seconds() / float64(rows)
	k := costClass(rows)
	if c.perRow[k] == 0 {
		c.perRow[k] = x
		return
	}
	c.perRow[k] += costWeight * (x - c.perRow[k])
}

// worth reports whether a batch of rows is worth running on another
// instance now: its class is unmeasured (so it gets measured), or costs at
// most factor times the cheapest class per row.
func (c *costModel) worth(rows int, factor float64) bool {
	x := c.perRow[costClass(rows)]
	if x == 0 {
		return true
	}
	best := x
	for _, y := range c.perRow {
		if y != 0 && y < best {
			best = y
		}
	}
	return x <= factor*best
}
