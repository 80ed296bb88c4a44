package batching

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/infergate/infergate/errdefs"
	"github.com/infergate/infergate/runtime"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeRunner echoes its first input as its output, records batch sizes,
// and blocks while its gate is closed.
type fakeRunner struct {
	mu      sync.Mutex
	batches []int64 // rows per run
	gate    chan struct{}
	started chan struct{} // told of each run start, when not nil
	err     error
}

func (f *fakeRunner) Run(ctx context.Context, in []runtime.Tensor) ([]runtime.Tensor, error) {
	if f.started != nil {
		f.started <- struct{}{}
	}
	if f.gate != nil {
		<-f.gate
	}
	f.mu.Lock()
	f.batches = append(f.batches, in[0].Shape[0])
	f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	out := in[0]
	out.Name = "y"
	out.Data = append([]byte{}, in[0].Data...)
	return []runtime.Tensor{out}, nil
}

func (f *fakeRunner) sizes() []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int64{}, f.batches...)
}

// depthObserver lets a test wait for a queue depth.
type depthObserver struct {
	nopObserver
	mu       sync.Mutex
	depth    int
	changed  chan struct{}
	rejected []string
}

func newDepthObserver() *depthObserver { return &depthObserver{changed: make(chan struct{}, 1)} }

func (o *depthObserver) QueueDepth(n int) {
	o.mu.Lock()
	o.depth = n
	o.mu.Unlock()
	select {
	case o.changed <- struct{}{}:
	default:
	}
}

func (o *depthObserver) Rejected(r string) {
	o.mu.Lock()
	o.rejected = append(o.rejected, r)
	o.mu.Unlock()
}

func (o *depthObserver) waitDepth(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		o.mu.Lock()
		d := o.depth
		o.mu.Unlock()
		if d == n {
			return
		}
		select {
		case <-o.changed:
		case <-deadline:
			t.Fatalf("queue depth stayed %d, want %d", d, n)
		}
	}
}

// rowsReq is a request of n rows of width FP32 elements, every byte fill.
func rowsReq(n int, fill byte, width int) Request {
	data := make([]byte, 4*n*width)
	for i := range data {
		data[i] = fill
	}
	return Request{Inputs: []runtime.Tensor{{Name: "x", DataType: runtime.FP32, Shape: []int64{int64(n), int64(width)}, Data: data}}}
}

func newScheduler(t *testing.T, run Runner, o Options) *Scheduler {
	t.Helper()
	s, err := NewScheduler(run, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// infer runs Infer in a goroutine and returns its result channel.
func infer(s *Scheduler, ctx context.Context, req Request) chan result {
	ch := make(chan result, 1)
	go func() {
		outs, err := s.Infer(ctx, req)
		ch <- result{outs, err}
	}()
	return ch
}

func wait(t *testing.T, ch chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("request did not complete")
	}
	return result{}
}

// TestLoneRequestDoesNotWait: with an hour of max_queue_delay and an idle
// instance, a lone request runs at once (a wait would hang the test).
func TestLoneRequestDoesNotWait(t *testing.T) {
	run := &fakeRunner{}
	s := newScheduler(t, run, Options{MaxBatchSize: 8, MaxQueueDelay: time.Hour})
	r := wait(t, infer(s, context.Background(), rowsReq(1, 7, 2)))
	if r.err != nil || r.outputs[0].Data[0] != 7 {
		t.Fatalf("got %+v", r)
	}
}

// TestBatchesFormWhileBusy: requests that arrive while every instance is
// busy run together in one batch when an instance frees up.
func TestBatchesFormWhileBusy(t *testing.T) {
	run := &fakeRunner{gate: make(chan struct{}), started: make(chan struct{}, 16)}
	obs := newDepthObserver()
	s := newScheduler(t, run, Options{MaxBatchSize: 8, Instances: 1, Observer: obs})
	first := infer(s, context.Background(), rowsReq(1, 1, 2))
	<-run.started
	var rest []chan result
	for i := range 5 {
		rest = append(rest, infer(s, context.Background(), rowsReq(1, byte(10+i), 2)))
	}
	obs.waitDepth(t, 5)
	close(run.gate)
	wait(t, first)
	for i, ch := range rest {
		r := wait(t, ch)
		if r.err != nil || len(r.outputs[0].Data) != 8 || r.outputs[0].Data[0] != byte(10+i) || r.outputs[0].Shape[0] != 1 {
			t.Errorf("request %d: got %+v", i, r)
		}
	}
	if got := run.sizes(); len(got) != 2 || got[0] != 1 || got[1] != 5 {
		t.Errorf("got batches %v, want [1 5]", got)
	}
}

func TestBatchRules(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		reqs []Request // queued behind a blocked first request of 1 row
		want []int64   // rows of the batches after the first
	}{
		{"rows up to max_batch_size", Options{MaxBatchSize: 8}, []Request{rowsReq(3, 1, 2), rowsReq(3, 2, 2), rowsReq(3, 3, 2)}, []int64{6, 3}},
		{"multi-row requests count by rows", Options{MaxBatchSize: 8}, []Request{rowsReq(8, 1, 2), rowsReq(1, 2, 2)}, []int64{8, 1}},
		{"different shapes batch apart", Options{MaxBatchSize: 8}, []Request{rowsReq(1, 1, 2), rowsReq(1, 2, 3), rowsReq(1, 3, 2), rowsReq(1, 4, 3)}, []int64{2, 2}},
		{"head larger than the preferred sizes it fills", Options{MaxBatchSize: 8, PreferredBatchSizes: []int{2, 4}, MaxQueueDelay: time.Millisecond}, []Request{rowsReq(3, 1, 2)}, []int64{3}},
		{"head never skipped for a preferred size", Options{MaxBatchSize: 8, PreferredBatchSizes: []int{2, 4}}, []Request{rowsReq(3, 1, 2), rowsReq(1, 2, 2), rowsReq(1, 3, 2)}, []int64{4, 1}},
		{"preferred size taken first", Options{MaxBatchSize: 8, PreferredBatchSizes: []int{4}}, []Request{rowsReq(1, 1, 2), rowsReq(1, 2, 2), rowsReq(1, 3, 2), rowsReq(1, 4, 2), rowsReq(1, 5, 2)}, []int64{4, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := &fakeRunner{gate: make(chan struct{}), started: make(chan struct{}, 16)}
			obs := newDepthObserver()
			tt.opts.Instances, tt.opts.Observer = 1, obs
			s := newScheduler(t, run, tt.opts)
			first := infer(s, context.Background(), rowsReq(1, 0, 2))
			<-run.started
			var chs []chan result
			for i, r := range tt.reqs {
				chs = append(chs, infer(s, context.Background(), r))
				obs.waitDepth(t, i+1) // keep the queue order
			}
			go func() {
				for range run.started {
				}
			}()
			close(run.gate)
			wait(t, first)
			for i, ch := range chs {
				r := wait(t, ch)
				if r.err != nil {
					t.Fatalf("request %d: %v", i, r.err)
				}
				want := tt.reqs[i].Inputs[0]
				if got := r.outputs[0]; string(got.Data) != string(want.Data) || got.Shape[0] != want.Shape[0] {
					t.Errorf("request %d got another request's rows", i)
				}
			}
			s.Close()
			close(run.started)
			got := run.sizes()[1:]
			if len(got) != len(tt.want) {
				t.Fatalf("got batches %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got batches %v, want %v", got, tt.want)
				}
			}
		})
	}
}

// TestPreferredSizeHoldsBack: below the smallest preferred size, requests
// wait for max_queue_delay, then go as they are.
func TestPreferredSizeHoldsBack(t *testing.T) {
	run := &fakeRunner{}
	s := newScheduler(t, run, Options{MaxBatchSize: 8, PreferredBatchSizes: []int{4}, MaxQueueDelay: 20 * time.Millisecond})
	a := infer(s, context.Background(), rowsReq(1, 1, 2))
	b := infer(s, context.Background(), rowsReq(1, 2, 2))
	if r := wait(t, a); r.err != nil {
		t.Fatal(r.err)
	}
	if r := wait(t, b); r.err != nil {
		t.Fatal(r.err)
	}
	var total int64
	for _, n := range run.sizes() {
		total += n
	}
	if total != 2 {
		t.Errorf("got batches %v", run.sizes())
	}
}

func TestOverload(t *testing.T) {
	for _, kind := range []errdefs.Kind{errdefs.Internal, errdefs.Throttled} {
		run := &fakeRunner{gate: make(chan struct{}), started: make(chan struct{}, 4)}
		obs := newDepthObserver()
		s := newScheduler(t, run, Options{MaxBatchSize: 1, Instances: 1, MaxQueueSize: 2, RejectKind: kind, RetryAfter: 2 * time.Second, Observer: obs})
		first := infer(s, context.Background(), rowsReq(1, 0, 2))
		<-run.started
		q1 := infer(s, context.Background(), rowsReq(1, 1, 2))
		obs.waitDepth(t, 1)
		if err := s.Admit(); err != nil {
			t.Errorf("kind %v: Admit with room in the queue: %v", kind, err)
		}
		q2 := infer(s, context.Background(), rowsReq(1, 2, 2))
		obs.waitDepth(t, 2)
		want := kind
		if want == errdefs.Internal {
			want = errdefs.Overloaded
		}
		// Admit, which protocols call before decoding, refuses as Infer does.
		for what, err := range map[string]error{"Infer": func() error { _, err := s.Infer(context.Background(), rowsReq(1, 3, 2)); return err }(), "Admit": s.Admit()} {
			var re *errdefs.Error
			if !errors.As(err, &re) || re.Kind != want || re.RetryAfter != 2*time.Second || re.Msg != "queue is full (2 requests): retry later" {
				t.Errorf("kind %v, %s: got %v", kind, what, err)
			}
		}
		go func() {
			for range run.started {
			}
		}()
		close(run.gate)
		for _, ch := range []chan result{first, q1, q2} {
			if r := wait(t, ch); r.err != nil {
				t.Error(r.err)
			}
		}
		obs.waitDepth(t, 0)
		if err := s.Admit(); err != nil {
			t.Errorf("kind %v: Admit after the queue drained: %v", kind, err)
		}
		s.Close()
		close(run.started)
	}
}

// TestQueueTimeout: a request whose timeout expires in the queue fails
// and never runs (REJECT), or runs after the others (DELAY).
func TestQueueTimeout(t *testing.T) {
	for _, delay := range []bool{false, true} {
		run := &fakeRunner{gate: make(chan struct{}), started: make(chan struct{}, 4)}
		obs := newDepthObserver()
		s := newScheduler(t, run, Options{MaxBatchSize: 1, Instances: 1, AllowTimeoutOverride: true, DelayOnTimeout: delay, Observer: obs})
		first := infer(s, context.Background(), rowsReq(1, 0, 2))
		<-run.started
		req := rowsReq(1, 9, 2)
		req.Timeout = time.Millisecond
		expiring := infer(s, context.Background(), req)
		if !delay {
			r := wait(t, expiring)
			var re *errdefs.Error
			if !errors.As(r.err, &re) || re.Kind != errdefs.Timeout || re.Msg != "request timed out after 1ms in the queue" {
				t.Fatalf("got %v", r.err)
			}
		} else {
			obs.waitDepth(t, 1)
			time.Sleep(5 * time.Millisecond) // let it expire: DELAY keeps it queued
		}
		later := infer(s, context.Background(), rowsReq(1, 5, 2))
		obs.waitDepth(t, map[bool]int{false: 1, true: 2}[delay])
		go func() {
			for range run.started {
			}
		}()
		close(run.gate)
		wait(t, first)
		wait(t, later)
		if delay {
			if r := wait(t, expiring); r.err != nil {
				t.Fatal(r.err)
			}
		}
		s.Close()
		close(run.started)
		if got := len(run.sizes()); got != map[bool]int{false: 2, true: 3}[delay] {
			t.Errorf("delay=%v: %d runs", delay, got)
		}
	}
}

func TestPriority(t *testing.T) {
	run := &fakeRunner{gate: make(chan struct{}), started: make(chan struct{}, 8)}
	obs := newDepthObserver()
	s := newScheduler(t, run, Options{MaxBatchSize: 1, Instances: 1, PriorityLevels: 2, Observer: obs})
	first := infer(s, context.Background(), rowsReq(1, 0, 2))
	<-run.started
	low := rowsReq(1, 2, 2)
	low.Priority = 2
	high := rowsReq(1, 1, 2)
	high.Priority = 1
	lowCh := infer(s, context.Background(), low)
	obs.waitDepth(t, 1)
	highCh := infer(s, context.Background(), high)
	obs.waitDepth(t, 2)
	run.gate <- struct{}{} // finish the first
	wait(t, first)
	<-run.started
	run.gate <- struct{}{} // finish the next: it must be the high one
	if r := wait(t, highCh); r.err != nil {
		t.Fatal(r.err)
	}
	select {
	case <-lowCh:
		t.Fatal("the low priority request ran before the high one")
	default:
	}
	<-run.started
	run.gate <- struct{}{}
	wait(t, lowCh)
	bad := rowsReq(1, 0, 2)
	bad.Priority = 3
	if _, err := s.Infer(context.Background(), bad); !errors.Is(err, runtime.ErrInvalidInput) {
		t.Errorf("priority 3 of 2: got %v", err)
	}
}

func TestCloseFailsQueued(t *testing.T) {
	run := &fakeRunner{gate: make(chan struct{}), started: make(chan struct{}, 4)}
	obs := newDepthObserver()
	s, err := NewScheduler(run, Options{MaxBatchSize: 1, Instances: 1, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	first := infer(s, context.Background(), rowsReq(1, 0, 2))
	<-run.started
	queued := infer(s, context.Background(), rowsReq(1, 1, 2))
	obs.waitDepth(t, 1)
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	if r := wait(t, queued); !errors.Is(r.err, runtime.ErrClosed) {
		t.Errorf("queued: got %v, want ErrClosed", r.err)
	}
	close(run.gate)
	if r := wait(t, first); r.err != nil {
		t.Errorf("running: got %v", r.err)
	}
	<-closed
	if _, err := s.Infer(context.Background(), rowsReq(1, 0, 2)); !errors.Is(err, runtime.ErrClosed) {
		t.Errorf("after close: got %v", err)
	}
}

func TestOptionsValidation(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no max batch", Options{}, "max batch size must be positive, got 0"},
		{"preferred too big", Options{MaxBatchSize: 4, PreferredBatchSizes: []int{8}}, "preferred batch size 8 is outside 1..4"},
		{"bad default priority", Options{MaxBatchSize: 4, PriorityLevels: 2, DefaultPriority: 3}, "default priority level 3 is outside 1..2"},
		{"bad reject kind", Options{MaxBatchSize: 4, RejectKind: errdefs.Invalid}, "reject kind must be overloaded or throttled, got invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewScheduler(&fakeRunner{}, tt.opts)
			if err == nil || err.Error() != tt.want {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}

// TestHoldFactor: while one instance runs, a free one holds back a batch
// whose measured cost per row is over twice the best, until more rows come
// or the running batch ends; a model whose rows cost the same at every
// batch size runs on every instance at once.
func TestHoldFactor(t *testing.T) {
	state := func(s *Scheduler) (idle, queued int) {
		s.mu.Lock() // the dispatch decisions are made under mu
		defer s.mu.Unlock()
		return s.idle, int(s.queued.Load())
	}
	// prime gives the scheduler measured costs per row: 1 row 900µs,
	// 2-3 rows 450µs, 4-7 rows perRow4.
	prime := func(s *Scheduler, perRow4 time.Duration) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.cost.add(1, 900*time.Microsecond)
		s.cost.add(2, 900*time.Microsecond)
		s.cost.add(4, 4*perRow4)
	}
	newRun := func() *fakeRunner {
		return &fakeRunner{gate: make(chan struct{}), started: make(chan struct{}, 16)}
	}
	t.Run("held until the rows are worth it", func(t *testing.T) {
		run, obs := newRun(), newDepthObserver()
		s := newScheduler(t, run, Options{MaxBatchSize: 8, Instances: 2, Observer: obs})
		prime(s, 100*time.Microsecond)
		chans := []chan result{infer(s, context.Background(), rowsReq(1, 1, 2))}
		<-run.started
		for i := range 3 {
			chans = append(chans, infer(s, context.Background(), rowsReq(1, byte(10+i), 2)))
		}
		obs.waitDepth(t, 3)
		if idle, queued := state(s); idle != 1 || queued != 3 {
			t.Fatalf("with 3 rows queued: %d instances idle, %d requests queued; want 1 and 3", idle, queued)
		}
		chans = append(chans, infer(s, context.Background(), rowsReq(1, 20, 2)))
		obs.waitDepth(t, 0) // 4 rows cost 100µs a row: the second instance takes them
		<-run.started
		close(run.gate)
		for i, ch := range chans {
			if r := wait(t, ch); r.err != nil {
				t.Errorf("request %d: %v", i, r.err)
			}
		}
		got := run.sizes()
		slices.Sort(got)
		if !slices.Equal(got, []int64{1, 4}) {
			t.Errorf("got batches %v, want 1 and 4", got)
		}
	})
	t.Run("held until the running batch ends", func(t *testing.T) {
		run, obs := newRun(), newDepthObserver()
		s := newScheduler(t, run, Options{MaxBatchSize: 8, Instances: 2, Observer: obs})
		prime(s, 100*time.Microsecond)
		first := infer(s, context.Background(), rowsReq(1, 1, 2))
		<-run.started
		second := infer(s, context.Background(), rowsReq(1, 2, 2))
		obs.waitDepth(t, 1)
		if idle, queued := state(s); idle != 1 || queued != 1 {
			t.Fatalf("%d instances idle, %d requests queued; want 1 and 1", idle, queued)
		}
		close(run.gate)
		for _, ch := range []chan result{first, second} {
			if r := wait(t, ch); r.err != nil {
				t.Fatal(r.err)
			}
		}
		if got := run.sizes(); !slices.Equal(got, []int64{1, 1}) {
			t.Errorf("got batches %v, want [1 1]", got)
		}
	})
	for _, tc := range []struct {
		name string
		cost time.Duration // per row at 4 rows
		hold float64
	}{
		{name: "rows that cost the same run at once", cost: 900 * time.Microsecond},
		{name: "a negative factor never holds", cost: 100 * time.Microsecond, hold: -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run, obs := newRun(), newDepthObserver()
			s := newScheduler(t, run, Options{MaxBatchSize: 8, Instances: 2, HoldFactor: tc.hold, Observer: obs})
			prime(s, tc.cost)
			if tc.cost == 900*time.Microsecond {
				s.mu.Lock()
				s.cost.add(2, 2*900*time.Microsecond) // 2-3 rows: 900µs a row too
				s.cost.add(2, 2*900*time.Microsecond)
				s.cost.add(2, 2*900*time.Microsecond)
				s.cost.add(2, 2*900*time.Microsecond)
				s.mu.Unlock()
			}
			first := infer(s, context.Background(), rowsReq(1, 1, 2))
			<-run.started
			second := infer(s, context.Background(), rowsReq(1, 2, 2))
			select { // the second instance runs it at once
			case <-run.started:
			case <-time.After(10 * time.Second):
				t.Fatal("the second request was held back")
			}
			close(run.gate)
			for _, ch := range []chan result{first, second} {
				if r := wait(t, ch); r.err != nil {
					t.Fatal(r.err)
				}
			}
		})
	}
}

// ctxRunner blocks each run until its context is done, or until release.
type ctxRunner struct {
	started chan struct{}
	release chan struct{}
	ended   chan error // the run's ctx.Err() when it ends
}

func (f *ctxRunner) Run(ctx context.Context, in []runtime.Tensor) ([]runtime.Tensor, error) {
	f.started <- struct{}{}
	select {
	case <-ctx.Done():
		f.ended <- ctx.Err()
		return nil, fmt.Errorf("run terminated: %w", ctx.Err())
	case <-f.release:
		f.ended <- nil
		out := in[0]
		out.Name = "y"
		return []runtime.Tensor{out}, nil
	}
}

// TestAbandonedRun: a run is terminated (its context cancelled) once no
// request of its batch waits for it, and not while one does; a request
// that leaves gets its own error at once.
func TestAbandonedRun(t *testing.T) {
	t.Run("every request left", func(t *testing.T) {
		run := &ctxRunner{started: make(chan struct{}, 4), release: make(chan struct{}), ended: make(chan error, 4)}
		s := newScheduler(t, run, Options{MaxBatchSize: 4, Instances: 1})
		ctx, cancel := context.WithCancel(context.Background())
		ch := infer(s, ctx, rowsReq(1, 1, 2))
		<-run.started
		cancel()
		if r := wait(t, ch); !errors.Is(r.err, context.Canceled) {
			t.Fatalf("got %v, want the request's own cancellation", r.err)
		}
		if err := <-run.ended; !errors.Is(err, context.Canceled) {
			t.Fatalf("the run ended with %v, want terminated", err)
		}
	})
	t.Run("one request still waits", func(t *testing.T) {
		run := &ctxRunner{started: make(chan struct{}, 4), release: make(chan struct{}), ended: make(chan error, 4)}
		obs := newDepthObserver()
		s := newScheduler(t, run, Options{MaxBatchSize: 4, Instances: 1, Observer: obs})
		// The first run holds the instance while two requests queue, to
		// share the next batch.
		first := infer(s, context.Background(), rowsReq(1, 0, 2))
		<-run.started
		ctx, cancel := context.WithCancel(context.Background())
		leaving := infer(s, ctx, rowsReq(1, 1, 2))
		staying := infer(s, context.Background(), rowsReq(1, 2, 2))
		obs.waitDepth(t, 2)
		run.release <- struct{}{}
		<-run.ended
		wait(t, first)
		<-run.started // the batch of two
		cancel()
		if r := wait(t, leaving); !errors.Is(r.err, context.Canceled) {
			t.Fatalf("leaving: got %v", r.err)
		}
		run.release <- struct{}{}
		if err := <-run.ended; err != nil {
			t.Fatalf("the run was terminated while a request waited: %v", err)
		}
		if r := wait(t, staying); r.err != nil || len(r.outputs) != 1 {
			t.Fatalf("staying: got %v", r.err)
		}
	})
}
