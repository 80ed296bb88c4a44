package batching

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/infergate/infergate/runtime"
)

type countObserver struct {
	nopObserver
	mu           sync.Mutex
	hits, misses int
	coalesced    chan struct{}
}

func (o *countObserver) Coalesced() { o.coalesced <- struct{}{} }

func (o *countObserver) CacheLookup(hit bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if hit {
		o.hits++
	} else {
		o.misses++
	}
}

func TestCoalescing(t *testing.T) {
	run := &fakeRunner{gate: make(chan struct{}), started: make(chan struct{}, 16)}
	obs := &countObserver{coalesced: make(chan struct{}, 16)}
	e, err := NewExecutor(run, ExecutorOptions{Model: "m", Version: 1, Coalesce: true, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	const n = 10
	results := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			outs, err := e.Infer(context.Background(), rowsReq(2, 3, 4), nil)
			if err == nil && (len(outs) != 1 || outs[0].Data[0] != 3) {
				err = errors.New("wrong output")
			}
			results <- err
		})
	}
	<-run.started
	for range n - 1 {
		<-obs.coalesced // every other request joined the running one
	}
	close(run.gate)
	wg.Wait()
	close(results)
	for err := range results {
		if err != nil {
			t.Error(err)
		}
	}
	if runs := len(run.sizes()); runs != 1 {
		t.Errorf("%d identical concurrent requests ran %d times, want 1", n, runs)
	}
	// A different request is not coalesced with a finished one.
	if _, err := e.Infer(context.Background(), rowsReq(2, 4, 4), nil); err != nil {
		t.Fatal(err)
	}
}

func TestResponseCache(t *testing.T) {
	cache, err := NewCache(16)
	if err != nil {
		t.Fatal(err)
	}
	run := &fakeRunner{}
	obs := &countObserver{}
	e, err := NewExecutor(run, ExecutorOptions{Model: "m", Version: 1, Cache: cache, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 3 {
		if _, err := e.Infer(ctx, rowsReq(1, 5, 4), nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(run.sizes()); got != 1 || obs.hits != 2 || obs.misses != 1 {
		t.Errorf("got %d runs, %d hits, %d misses; want 1, 2, 1", got, obs.hits, obs.misses)
	}
	// Another input, or other requested outputs, is another entry.
	e.Infer(ctx, rowsReq(1, 6, 4), nil)
	e.Infer(ctx, rowsReq(1, 5, 4), []int{0})
	if got := len(run.sizes()); got != 3 {
		t.Errorf("got %d runs, want 3", got)
	}
	// Failures are not cached.
	failing := &fakeRunner{err: errors.New("boom")}
	e2, _ := NewExecutor(failing, ExecutorOptions{Model: "m", Version: 2, Cache: cache})
	for range 2 {
		if _, err := e2.Infer(ctx, rowsReq(1, 5, 4), nil); err == nil {
			t.Fatal("want an error")
		}
	}
	if got := len(failing.sizes()); got != 2 {
		t.Errorf("failing runner ran %d times, want 2 (errors are not cached)", got)
	}
	// A reloaded version (a new executor for the same number) never gets
	// the old one's answers.
	reloaded, _ := NewExecutor(run, ExecutorOptions{Model: "m", Version: 1, Cache: cache, Observer: obs})
	runs := len(run.sizes())
	reloaded.Infer(ctx, rowsReq(1, 5, 4), nil)
	if got := len(run.sizes()); got != runs+1 {
		t.Errorf("the reloaded version was answered from the old one's cache")
	}
	reloaded.Close()
	// A closed version's entries go; others stay.
	e3, _ := NewExecutor(run, ExecutorOptions{Model: "other", Version: 1, Cache: cache})
	e3.Infer(ctx, rowsReq(1, 5, 4), nil)
	before := cache.Len()
	e.Close()
	if got := cache.Len(); got != before-3 || got != 1 {
		t.Errorf("after closing version 1: %d entries, want 1 (from %d)", got, before)
	}
	e2.Close()
	e3.Close()
}

// TestCoalescedPanic: a panic in a flight's run fails it, followers
// included, and the next identical request starts a new flight instead of
// waiting forever (issue 11, defect 3).
func TestCoalescedPanic(t *testing.T) {
	c := &coalescer{flights: map[cacheKey]*flight{}}
	k := cacheKey{executor: 1}
	started, release := make(chan struct{}), make(chan struct{})
	leader := make(chan error, 1)
	go func() {
		_, err := c.do(context.Background(), k, nopObserver{}, func(context.Context) ([]runtime.Tensor, error) {
			close(started)
			<-release
			panic("boom")
		})
		leader <- err
	}()
	<-started
	follower := make(chan error, 1)
	joined := &joinObserver{joined: make(chan struct{})}
	go func() {
		_, err := c.do(context.Background(), k, joined, func(context.Context) ([]runtime.Tensor, error) {
			return nil, errors.New("the follower ran its own flight")
		})
		follower <- err
	}()
	<-joined.joined // the follower waits on the leader's flight
	close(release)
	for name, ch := range map[string]chan error{"leader": leader, "follower": follower} {
		select {
		case err := <-ch:
			if err == nil {
				t.Errorf("%s: got no error", name)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s still waits on the panicked flight", name)
		}
	}
	outs, err := c.do(context.Background(), k, nopObserver{}, func(context.Context) ([]runtime.Tensor, error) {
		return []runtime.Tensor{{Name: "y"}}, nil
	})
	if err != nil || len(outs) != 1 {
		t.Fatalf("a later identical request: got %v, %v", outs, err)
	}
}

// joinObserver closes joined when a request joins a flight.
type joinObserver struct {
	nopObserver
	joined chan struct{}
}

func (o *joinObserver) Coalesced() { close(o.joined) }

// TestCoalescedRunAbandoned: a coalesced run is cancelled once every
// request of its flight has left, the leader's included, and not while
// one still waits; the leader gets its own deadline's error.
func TestCoalescedRunAbandoned(t *testing.T) {
	run := func(ended chan error) func(context.Context) ([]runtime.Tensor, error) {
		return func(ctx context.Context) ([]runtime.Tensor, error) {
			select {
			case <-ctx.Done():
				ended <- ctx.Err()
				return nil, ctx.Err()
			case <-time.After(200 * time.Millisecond):
				ended <- nil
				return []runtime.Tensor{{Name: "y"}}, nil
			}
		}
	}
	t.Run("everyone left", func(t *testing.T) {
		c := &coalescer{flights: map[cacheKey]*flight{}}
		ended := make(chan error, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		_, err := c.do(ctx, cacheKey{executor: 1}, nopObserver{}, run(ended))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("leader: got %v, want its deadline", err)
		}
		if err := <-ended; !errors.Is(err, context.Canceled) {
			t.Fatalf("the run ended with %v, want cancelled", err)
		}
	})
	t.Run("a cancelled flight is not joined", func(t *testing.T) {
		c := &coalescer{flights: map[cacheKey]*flight{}}
		k := cacheKey{executor: 1}
		dead := &flight{done: make(chan struct{}), cancel: func() {}} // everyone left; its run ends
		c.flights[k] = dead
		outs, err := c.do(context.Background(), k, nopObserver{}, func(context.Context) ([]runtime.Tensor, error) {
			return []runtime.Tensor{{Name: "y"}}, nil
		})
		if err != nil || len(outs) != 1 {
			t.Fatalf("got %v, %v; want a fresh run", outs, err)
		}
		if _, ok := c.flights[k]; ok {
			t.Fatal("the fresh flight was left behind")
		}
	})
	t.Run("a follower still waits", func(t *testing.T) {
		c := &coalescer{flights: map[cacheKey]*flight{}}
		ended := make(chan error, 1)
		k := cacheKey{executor: 1}
		ctx, cancel := context.WithCancel(context.Background())
		leader := make(chan error, 1)
		go func() {
			_, err := c.do(ctx, k, nopObserver{}, run(ended))
			leader <- err
		}()
		for { // until the leader's flight is registered
			c.mu.Lock()
			_, ok := c.flights[k]
			c.mu.Unlock()
			if ok {
				break
			}
			time.Sleep(time.Millisecond)
		}
		joined := &joinObserver{joined: make(chan struct{})}
		follower := make(chan error, 1)
		go func() {
			_, err := c.do(context.Background(), k, joined, run(ended))
			follower <- err
		}()
		<-joined.joined
		cancel() // the leader leaves; the follower still waits
		if err := <-ended; err != nil {
			t.Fatalf("the run was cancelled while a follower waited: %v", err)
		}
		if err := <-follower; err != nil {
			t.Fatalf("follower: %v", err)
		}
		<-leader
	})
}
