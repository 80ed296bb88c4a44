package load

import (
	"context"
	"fmt"
	"io"
	"math"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a run. The zero value is a closed loop of one worker
// with the defaults below.
type Options struct {
	// Concurrency is the number of closed-loop workers, each with one
	// request in flight. Default 1. Unused in open loop.
	Concurrency int
	// Rate, when positive, makes the run an open loop of Rate requests per
	// second. Default 0: closed loop.
	Rate float64
	// Poisson spaces open-loop requests by exponential gaps (a Poisson
	// process) instead of evenly. Default false.
	Poisson bool
	// Seed seeds the Poisson gaps. Default 1.
	Seed uint64
	// MaxInFlight is the number of open-loop workers, so the most requests
	// in flight at once. A request whose send time comes while every
	// worker is busy is sent late, and its latency still counts from its
	// send time. Default 256. Unused in closed loop.
	MaxInFlight int
	// Window is the length of a measurement window. Default 1s. The first
	// window is a warm-up and is discarded.
	Window time.Duration
	// StableWindows is how many consecutive windows must agree within
	// Stability; the result merges that many last windows. Default 3.
	StableWindows int
	// MaxWindows bounds the windows after the warm-up: a run lasts at most
	// (MaxWindows+1)×Window plus the requests in flight at the end. The
	// run ends there even when unstable, and Result.Stable says so.
	// Default 10.
	MaxWindows int
	// Stability is the fraction of their mean within which the windows'
	// throughputs and p50 latencies must lie. Default 0.1.
	Stability float64
	// Timeout bounds each HTTP request; one that times out counts as a
	// transport error. Default 30s.
	Timeout time.Duration
	// Progress, when not nil, gets a progress line after each window,
	// redrawn in place with a carriage return, and a newline at the end.
	// Default nil: silent.
	Progress io.Writer
	// Label names the run in the progress line and in Result.Label.
	Label string
}

func (o Options) withDefaults() (Options, error) {
	if o.Concurrency <= 0 {
		o.Concurrency = 1
	}
	if o.Rate < 0 || math.IsNaN(o.Rate) || math.IsInf(o.Rate, 0) {
		return o, fmt.Errorf("rate %v: want a positive number of requests per second, or 0 for a closed loop", o.Rate)
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 256
	}
	if o.Window <= 0 {
		o.Window = time.Second
	}
	if o.StableWindows <= 0 {
		o.StableWindows = 3
	}
	if o.MaxWindows <= 0 {
		o.MaxWindows = 10
	}
	if o.MaxWindows < o.StableWindows {
		return o, fmt.Errorf("max windows %d is fewer than the %d stable windows", o.MaxWindows, o.StableWindows)
	}
	if o.Stability <= 0 {
		o.Stability = 0.1
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	return o, nil
}

// workers is the number of goroutines that send requests.
func (o Options) workers() int {
	if o.Rate > 0 {
		return o.MaxInFlight
	}
	return o.Concurrency
}

// Mode names the load pattern of a run.
func (o Options) Mode() string {
	switch {
	case o.Rate > 0 && o.Poisson:
		return "poisson"
	case o.Rate > 0:
		return "constant"
	}
	return "closed"
}

// Result is the outcome of one run: the merged last StableWindows windows.
type Result struct {
	// Label, Scenario, URL, Model, Protocol describe what ran; Run fills
	// Label, URL, Model and Protocol, callers the rest.
	Label    string `json:"label"`
	Scenario string `json:"scenario,omitempty"`
	URL      string `json:"url,omitempty"`
	Model    string `json:"model,omitempty"`
	Protocol string `json:"protocol,omitempty"` // json, binary, in-process
	// Mode is closed, constant or poisson.
	Mode string `json:"mode"`
	// Concurrency is the closed-loop level (for RunFunc, the number of
	// workers); 0 in open loop.
	Concurrency int     `json:"concurrency"`
	Rate        float64 `json:"rate,omitempty"` // intended requests/s in open loop
	// Rows is the number of items (batch rows) in each request.
	Rows int `json:"rows"`
	// Requests is every request that finished in the measured windows;
	// OK the 2xx ones, Non2xx the others by status, Errors the transport
	// failures (connection refused, timeout) with the first one's text.
	Requests   int64            `json:"requests"`
	OK         int64            `json:"ok"`
	Non2xx     map[string]int64 `json:"non_2xx,omitempty"`
	Errors     int64            `json:"errors"`
	FirstError string           `json:"first_error,omitempty"`
	// Seconds is the length of the measured windows.
	Seconds float64 `json:"seconds"`
	// Throughput is 2xx answers per second; ItemsPerSec is Throughput×Rows.
	Throughput  float64 `json:"throughput"`
	ItemsPerSec float64 `json:"items_per_sec"`
	// Latency summarizes the 2xx answers' latencies: from the send in a
	// closed loop, from the intended send time in an open loop.
	Latency Latency `json:"latency"`
	// SendLag, in open loop, summarizes how late requests left after
	// their intended send times: the generator's own delay (Go's timers
	// fire up to a millisecond late on an idle machine; every worker busy
	// adds the backlog). It is part of Latency, as the client would see
	// it; a large SendLag with few workers busy means the generator, not
	// the server, was the bottleneck.
	SendLag *Latency `json:"send_lag,omitempty"`
	// Service, in open loop, summarizes the 2xx answers' latencies from
	// their actual send: the server's time, without the generator's lag.
	Service *Latency `json:"service,omitempty"`
	// Refused summarizes the service times of the 429 and 503 answers
	// (load shed), from their actual send; absent without any.
	Refused *Latency `json:"refused,omitempty"`
	// Stable says the last StableWindows windows agreed within the
	// stability bound; Windows counts every window run, warm-up included.
	Stable  bool `json:"stable"`
	Windows int  `json:"windows"`
	// RowsPerExecution is the mean rows per model execution over the run
	// (warm-up included), where the server reports it; 0 when unknown.
	// Callers fill it.
	RowsPerExecution float64    `json:"rows_per_execution,omitempty"`
	CDF              []CDFPoint `json:"cdf,omitempty"`
}

// Func does one unit of work for worker (0 to the number of workers - 1;
// each worker calls it from one goroutine, one call at a time) and returns
// an HTTP status (2xx is a success) or a transport error.
type Func func(ctx context.Context, worker int) (status int, err error)

// RunFunc runs f under the load pattern and the measurement windows of
// opts and returns the result with Label, Mode, Concurrency and Rate set.
// It stops at the end of the last window, lets the calls in flight finish,
// and returns when every worker has returned. A cancelled ctx ends the run
// early with ctx's error.
func RunFunc(ctx context.Context, opts Options, f Func) (*Result, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	var offsets []time.Duration
	if opts.Rate > 0 {
		// Twice as long as the run lasts at most, plus a second, so that
		// the schedule outlasts a run whose windows a busy machine
		// stretches. Should it run out all the same, the run ends there.
		n := math.Ceil(opts.Rate * (2*time.Duration(opts.MaxWindows+1)*opts.Window + time.Second).Seconds())
		if n > maxScheduled {
			return nil, fmt.Errorf("rate %v for %d windows of %v is over %d requests: lower one of them", opts.Rate, opts.MaxWindows+1, opts.Window, maxScheduled)
		}
		if offsets, err = Schedule(opts.Rate, int(n), opts.Poisson, opts.Seed); err != nil {
			return nil, err
		}
	}
	workers := opts.workers()
	shards := make([]*shard, min(workers, 16))
	for i := range shards {
		shards[i] = &shard{h: newHistogram()}
	}

	stop := make(chan struct{})
	exhausted := make(chan struct{}) // closed when the schedule runs out
	var stopped atomic.Bool
	var wg sync.WaitGroup
	start := time.Now()
	// Open loop: one pacer releases each request at its send time to an
	// idle worker. A request that finds every worker busy waits for one,
	// and the wait counts in its latency.
	var sends chan int
	if offsets != nil {
		// With one P (the generator pinned to one core) and the pacer
		// on its locked thread (pace), answers that the server had sent
		// within a millisecond sat unread in the generator's sockets for
		// 0.5 s in some runs; with two Ps or more they did not
		// (benchmarks/results/2026-12-03/issue11). GOMAXPROCS is the
		// process's: two open loops at once under one P would restore
		// it early, which nothing here does.
		if n := runtime.GOMAXPROCS(0); n < 2 {
			runtime.GOMAXPROCS(2)
			defer runtime.GOMAXPROCS(n)
		}
		sends = make(chan int) // unbuffered: a send is taken by an idle worker or waits
		wg.Go(func() { pace(start, offsets, sends, stop, exhausted) })
	}
	for w := range workers {
		sh := shards[w%len(shards)]
		wg.Go(func() {
			if sends != nil {
				for i := range sends {
					began := start.Add(offsets[i])
					sent := time.Now()
					sh.recordLag(sent.Sub(began))
					status, err := f(ctx, w)
					done := time.Now()
					sh.record(done.Sub(began), done.Sub(sent), status, err)
				}
				return
			}
			for !stopped.Load() {
				began := time.Now()
				status, err := f(ctx, w)
				took := time.Since(began)
				sh.record(took, took, status, err)
			}
		})
	}

	var windows []*window
	last := time.Now()
	runErr := func() error {
		timer := time.NewTimer(opts.Window)
		defer timer.Stop()
		for k := 0; k <= opts.MaxWindows; k++ {
			if k > 0 {
				timer.Reset(opts.Window)
			}
			ended := false
			select {
			case <-timer.C:
			case <-exhausted:
				ended = true
			case <-ctx.Done():
				return ctx.Err()
			}
			w := &window{h: newHistogram(), lag: newHistogram(), service: newHistogram(), refused: newHistogram()}
			for _, s := range shards {
				s.drain(w)
			}
			now := time.Now()
			w.elapsed, last = now.Sub(last), now
			if k == 0 && !ended {
				progress(opts, 0, nil)
				continue // warm-up
			}
			windows = append(windows, w)
			if ended {
				progress(opts, k, w)
				return nil
			}
			if len(windows) >= opts.StableWindows && stable(windows[len(windows)-opts.StableWindows:], opts.Stability) {
				progress(opts, k, w)
				return nil
			}
			progress(opts, k, w)
		}
		return nil
	}()
	stopped.Store(true)
	close(stop) // the pacer returns and closes sends; workers finish their request
	wg.Wait()
	if opts.Progress != nil {
		fmt.Fprintln(opts.Progress)
	}
	if runErr != nil {
		return nil, runErr
	}

	measured := windows[max(0, len(windows)-opts.StableWindows):]
	m := merge(measured)
	r := &Result{
		Label:       opts.Label,
		Mode:        opts.Mode(),
		Concurrency: workers,
		Rate:        opts.Rate,
		Rows:        1,
		Requests:    m.ok + m.failed(),
		OK:          m.ok,
		Errors:      m.errors,
		FirstError:  m.firstErr,
		Seconds:     math.Round(m.elapsed.Seconds()*1e4) / 1e4,
		Throughput:  m.throughput(),
		Latency:     summarize(m.h),
		Stable:      len(measured) == opts.StableWindows && stable(measured, opts.Stability),
		Windows:     len(windows) + 1,
		CDF:         cdf(m.h),
	}
	if opts.Rate > 0 {
		r.Concurrency = 0
		lag := summarize(m.lag)
		r.SendLag = &lag
		svc := summarize(m.service)
		r.Service = &svc
	}
	r.ItemsPerSec = r.Throughput
	if m.refused != nil && m.refused.TotalCount() > 0 {
		ref := summarize(m.refused)
		r.Refused = &ref
	}
	if len(m.non2xx) > 0 {
		r.Non2xx = map[string]int64{}
		for s, n := range m.non2xx {
			r.Non2xx[strconv.Itoa(s)] = n
		}
	}
	return r, nil
}

// SetRows records that each request carries rows items.
func (r *Result) SetRows(rows int) {
	r.Rows = max(rows, 1)
	r.ItemsPerSec = r.Throughput * float64(r.Rows)
}

// Failed is the number of non-2xx answers and transport errors.
func (r *Result) Failed() int64 {
	n := r.Errors
	for _, v := range r.Non2xx {
		n += v
	}
	return n
}

// StatusSummary lists the non-2xx statuses as "503×12 429×3", most first.
func (r *Result) StatusSummary() string {
	type sc struct {
		s string
		n int64
	}
	var all []sc
	for s, n := range r.Non2xx {
		all = append(all, sc{s, n})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].n > all[j].n || (all[i].n == all[j].n && all[i].s < all[j].s) })
	out := ""
	for i, x := range all {
		if i > 0 {
			out += " "
		}
		out += fmt.Sprintf("%s×%d", x.s, x.n)
	}
	return out
}

// progress redraws the progress line after window k (0: the warm-up).
func progress(opts Options, k int, w *window) {
	if opts.Progress == nil {
		return
	}
	const width = 20
	filled := width * k / opts.MaxWindows
	line := fmt.Sprintf("\r\033[K%-30s %s%s %2d/%d", opts.Label, strings.Repeat("█", filled), strings.Repeat("░", width-filled), k, opts.MaxWindows)
	if w == nil {
		line += "  warming up"
	} else {
		line += fmt.Sprintf("  %s/s  p50 %s  p99 %s", SI(w.throughput()), Micros(us(w.h.ValueAtQuantile(50))), Micros(us(w.h.ValueAtQuantile(99))))
		if n := w.failed(); n > 0 {
			line += fmt.Sprintf("  failed %d", n)
		}
	}
	fmt.Fprint(opts.Progress, line)
}

// SI writes x with a k or M suffix and three significant digits: 11.6k.
func SI(x float64) string {
	switch {
	case x >= 1e6:
		return strconv.FormatFloat(x/1e6, 'f', digits(x/1e6), 64) + "M"
	case x >= 1e3:
		return strconv.FormatFloat(x/1e3, 'f', digits(x/1e3), 64) + "k"
	}
	return strconv.FormatFloat(x, 'f', digits(x), 64)
}

// digits is the number of decimals that give x three significant digits.
func digits(x float64) int {
	switch {
	case x >= 100:
		return 0
	case x >= 10:
		return 1
	}
	return 2
}

// Micros writes a latency given in µs: 42.1µs, 1.23ms, 2.50s.
func Micros(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', digits(v/1e6), 64) + "s"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', digits(v/1e3), 64) + "ms"
	}
	return strconv.FormatFloat(v, 'f', digits(v), 64) + "µs"
}
