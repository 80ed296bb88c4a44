package load

import (
	"math"
	"testing"
	"time"
)

func TestSchedule(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc    string
		rate    float64
		n       int
		poisson bool
		wantErr bool
	}{
		{desc: "constant", rate: 1000, n: 5},
		{desc: "poisson", rate: 2000, n: 20000, poisson: true},
		{desc: "zero rate", rate: 0, n: 5, wantErr: true},
		{desc: "negative rate", rate: -1, n: 5, wantErr: true},
		{desc: "infinite rate", rate: math.Inf(1), n: 5, wantErr: true},
		{desc: "too many", rate: 1, n: maxScheduled + 1, wantErr: true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			got, err := Schedule(tc.rate, tc.n, tc.poisson, 7)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("got %d offsets, want an error", len(got))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.n || got[0] != 0 {
				t.Fatalf("got %d offsets starting at %v, want %d starting at 0", len(got), got[0], tc.n)
			}
			for i := 1; i < len(got); i++ {
				if got[i] < got[i-1] {
					t.Fatalf("offset %d (%v) before offset %d (%v)", i, got[i], i-1, got[i-1])
				}
			}
			if !tc.poisson {
				for i, d := range got {
					if want := time.Duration(i) * time.Millisecond; d != want {
						t.Errorf("offset %d: got %v, want %v", i, d, want)
					}
				}
				return
			}
			// Exponential gaps: mean 1/rate, and a coefficient of variation of 1.
			var sum, sq float64
			for i := 1; i < len(got); i++ {
				g := (got[i] - got[i-1]).Seconds()
				sum += g
				sq += g * g
			}
			n := float64(len(got) - 1)
			mean := sum / n
			cv := math.Sqrt(sq/n-mean*mean) / mean
			if math.Abs(mean*tc.rate-1) > 0.05 || math.Abs(cv-1) > 0.05 {
				t.Errorf("gaps: got mean %.3g s and cv %.3f, want %.3g s and 1", mean, cv, 1/tc.rate)
			}
			again, _ := Schedule(tc.rate, tc.n, true, 7)
			other, _ := Schedule(tc.rate, tc.n, true, 8)
			if again[tc.n-1] != got[tc.n-1] || other[tc.n-1] == got[tc.n-1] {
				t.Errorf("same seed gave %v then %v; another seed %v", got[tc.n-1], again[tc.n-1], other[tc.n-1])
			}
		})
	}
}

// windowOf returns a window of one second with ok requests, all of
// latency p50.
func windowOf(ok int64, p50 time.Duration) *window {
	w := &window{h: newHistogram(), elapsed: time.Second}
	w.ok = ok
	for range ok {
		_ = w.h.RecordValue(int64(p50))
	}
	return w
}

func TestStable(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	for _, tc := range []struct {
		desc string
		ws   []*window
		want bool
	}{
		{"none", nil, false},
		{"identical", []*window{windowOf(100, ms), windowOf(100, ms), windowOf(100, ms)}, true},
		{"within 10%", []*window{windowOf(95, ms), windowOf(100, ms), windowOf(105, ms)}, true},
		{"throughput off by 30%", []*window{windowOf(70, ms), windowOf(100, ms), windowOf(100, ms)}, false},
		{"p50 off by 30%", []*window{windowOf(100, ms), windowOf(100, 13*ms/10), windowOf(100, ms)}, false},
		{"an empty window", []*window{windowOf(0, ms), windowOf(0, ms), windowOf(0, ms)}, false},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			if got := stable(tc.ws, 0.1); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	t.Parallel()
	h := newHistogram()
	for i := 1; i <= 1000; i++ {
		_ = h.RecordValue(int64(i) * int64(time.Microsecond))
	}
	got := summarize(h)
	near := func(got, want float64) bool { return math.Abs(got-want) <= want*0.001+0.01 }
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"min", got.Min, 1}, {"mean", got.Mean, 500.5}, {"p50", got.P50, 500}, {"p90", got.P90, 900},
		{"p99", got.P99, 990}, {"p99.9", got.P999, 999}, {"max", got.Max, 1000},
	} {
		if !near(c.got, c.want) {
			t.Errorf("%s: got %v µs, want %v µs", c.name, c.got, c.want)
		}
	}
	points := cdf(h)
	if len(points) != len(cdfQuantiles) || points[0].LatencyUS != got.Min || points[len(points)-1].Fraction != 1 {
		t.Errorf("cdf: got %v", points)
	}
	if got := summarize(newHistogram()); got != (Latency{}) {
		t.Errorf("empty histogram: got %+v, want zeros", got)
	}
}

func TestShardRecord(t *testing.T) {
	t.Parallel()
	s := &shard{h: newHistogram()}
	s.record(time.Millisecond, time.Millisecond, 200, nil)
	s.record(2*time.Millisecond, 2*time.Millisecond, 204, nil)
	s.record(time.Second, time.Second, 503, nil)
	s.record(time.Second, time.Second, 503, nil)
	s.record(time.Second, time.Second, 429, nil)
	s.record(time.Second, time.Second, 0, errTest("connection refused"))
	s.record(time.Second, time.Second, 0, errTest("timeout"))
	w := &window{h: newHistogram()}
	s.drain(w)
	if w.ok != 2 || w.errors != 2 || w.non2xx[503] != 2 || w.non2xx[429] != 1 || w.firstErr != "connection refused" {
		t.Errorf("got ok %d, errors %d (first %q), non-2xx %v; want 2, 2 (connection refused), 503×2 429×1", w.ok, w.errors, w.firstErr, w.non2xx)
	}
	if n := w.h.TotalCount(); n != 2 || w.h.Max() > int64(2*time.Millisecond)+int64(time.Microsecond) {
		t.Errorf("histogram: got %d latencies up to %v, want the 2 successes only", n, time.Duration(w.h.Max()))
	}
	if s.ok != 0 || s.h.TotalCount() != 0 {
		t.Errorf("drain left %d ok and %d latencies in the shard", s.ok, s.h.TotalCount())
	}
}

type errTest string

func (e errTest) Error() string { return string(e) }
