package load

import (
	"math"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// The latency histograms' range and precision: 1 ns to 60 s, three
// significant digits (a 42 µs latency is known to within 0.05 µs). Longer
// latencies are recorded as 60 s.
const (
	lowestLatency  = 1
	highestLatency = int64(60 * time.Second)
	significant    = 3
)

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(lowestLatency, highestLatency, significant)
}

// Latency summarizes a latency histogram, in microseconds.
type Latency struct {
	Min  float64 `json:"min_us"`
	Mean float64 `json:"mean_us"`
	P50  float64 `json:"p50_us"`
	P90  float64 `json:"p90_us"`
	P95  float64 `json:"p95_us"`
	P99  float64 `json:"p99_us"`
	P999 float64 `json:"p999_us"`
	Max  float64 `json:"max_us"`
}

// CDFPoint is one point of a latency distribution: Fraction of the
// requests took at most LatencyUS.
type CDFPoint struct {
	LatencyUS float64 `json:"latency_us"`
	Fraction  float64 `json:"fraction"`
}

func us(ns int64) float64 { return math.Round(float64(ns)/10) / 100 } // µs, to 10 ns

// summarize returns the summary of h; zero when h is empty.
func summarize(h *hdrhistogram.Histogram) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	return Latency{
		Min:  us(h.Min()),
		Mean: math.Round(h.Mean()/10) / 100,
		P50:  us(h.ValueAtQuantile(50)),
		P90:  us(h.ValueAtQuantile(90)),
		P95:  us(h.ValueAtQuantile(95)),
		P99:  us(h.ValueAtQuantile(99)),
		P999: us(h.ValueAtQuantile(99.9)),
		Max:  us(h.Max()),
	}
}

// cdfQuantiles are the percentiles a CDF is sampled at: dense in the tail,
// where latency distributions differ.
var cdfQuantiles = []float64{0, 1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 97, 98, 99, 99.5, 99.9, 99.95, 99.99, 100}

// cdf samples h's cumulative distribution at cdfQuantiles.
func cdf(h *hdrhistogram.Histogram) []CDFPoint {
	if h.TotalCount() == 0 {
		return nil
	}
	out := make([]CDFPoint, 0, len(cdfQuantiles))
	for _, q := range cdfQuantiles {
		v := h.ValueAtQuantile(q)
		if q == 0 {
			v = h.Min()
		}
		out = append(out, CDFPoint{LatencyUS: us(v), Fraction: q / 100})
	}
	return out
}

// counts are the outcomes of some requests.
type counts struct {
	ok       int64
	errors   int64
	non2xx   map[int]int64
	firstErr string
}

func (c *counts) add(o counts) {
	c.ok += o.ok
	c.errors += o.errors
	for s, n := range o.non2xx {
		if c.non2xx == nil {
			c.non2xx = map[int]int64{}
		}
		c.non2xx[s] += n
	}
	if c.firstErr == "" {
		c.firstErr = o.firstErr
	}
}

func (c *counts) failed() int64 {
	n := c.errors
	for _, v := range c.non2xx {
		n += v
	}
	return n
}

// shard records the outcomes of some workers. Workers share a few shards
// (each behind its own mutex) so that a window's snapshot merges a few
// histograms, not one per worker.
type shard struct {
	mu  sync.Mutex
	h   *hdrhistogram.Histogram
	lag *hdrhistogram.Histogram // open loop: intended to actual send time
	// service: 2xx latencies from the actual send; refused: those of 429
	// and 503 answers (load shedding).
	service, refused *hdrhistogram.Histogram
	counts
}

// recordLag adds an open-loop request's send lag.
func (s *shard) recordLag(lag time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lag == nil {
		s.lag = newHistogram()
	}
	_ = s.lag.RecordValue(min(max(int64(lag), 0), highestLatency))
}

// record adds one request's outcome: a 2xx latency to the histogram, a
// non-2xx status or a transport error to the counts only.
func (s *shard) record(latency, service time.Duration, status int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err != nil:
		s.errors++
		if s.firstErr == "" {
			s.firstErr = err.Error()
		}
	case status < 200 || status > 299:
		if status == 429 || status == 503 {
			if s.refused == nil {
				s.refused = newHistogram()
			}
			_ = s.refused.RecordValue(min(int64(service), highestLatency))
		}
		if s.non2xx == nil {
			s.non2xx = map[int]int64{}
		}
		s.non2xx[status]++
	default:
		s.ok++
		_ = s.h.RecordValue(min(int64(latency), highestLatency))
		if s.service == nil {
			s.service = newHistogram()
		}
		_ = s.service.RecordValue(min(int64(service), highestLatency))
	}
}

// drain moves s's records into w and resets s.
func (s *shard) drain(w *window) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w.h.Merge(s.h)
	s.h.Reset()
	if s.lag != nil {
		w.lag.Merge(s.lag)
		s.lag.Reset()
	}
	if s.service != nil {
		if w.service == nil {
			w.service = newHistogram()
		}
		w.service.Merge(s.service)
		s.service.Reset()
	}
	if s.refused != nil {
		if w.refused == nil {
			w.refused = newHistogram()
		}
		w.refused.Merge(s.refused)
		s.refused.Reset()
	}
	w.counts.add(s.counts)
	s.counts = counts{}
}

// window is what one measurement window recorded.
type window struct {
	h       *hdrhistogram.Histogram
	lag     *hdrhistogram.Histogram
	service *hdrhistogram.Histogram
	refused *hdrhistogram.Histogram
	elapsed time.Duration
	counts
}

func (w *window) throughput() float64 {
	if w.elapsed <= 0 {
		return 0
	}
	return float64(w.ok) / w.elapsed.Seconds()
}

func (w *window) p50() float64 { return float64(w.h.ValueAtQuantile(50)) }

// stable reports whether every window's throughput and p50 latency lie
// within tolerance (a fraction) of the windows' mean, and every window
// answered something: perf_analyzer's stability rule, on p50 instead of
// the mean latency because one slow request moves the mean of a short
// window.
func stable(ws []*window, tolerance float64) bool {
	if len(ws) == 0 {
		return false
	}
	var tput, p50 float64
	for _, w := range ws {
		if w.ok == 0 {
			return false
		}
		tput += w.throughput()
		p50 += w.p50()
	}
	tput /= float64(len(ws))
	p50 /= float64(len(ws))
	for _, w := range ws {
		if math.Abs(w.throughput()-tput) > tolerance*tput || math.Abs(w.p50()-p50) > tolerance*p50 {
			return false
		}
	}
	return true
}

// merge sums windows into one.
func merge(ws []*window) *window {
	out := &window{h: newHistogram(), lag: newHistogram(), service: newHistogram(), refused: newHistogram()}
	for _, w := range ws {
		out.h.Merge(w.h)
		if w.refused != nil {
			out.refused.Merge(w.refused)
		}
		if w.service != nil {
			out.service.Merge(w.service)
		}
		if w.lag != nil {
			out.lag.Merge(w.lag)
		}
		out.elapsed += w.elapsed
		out.counts.add(w.counts)
	}
	return out
}
