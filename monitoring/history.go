package monitoring

import (
	"cmp"
	"context"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// HistoryOptions configure a History.
type HistoryOptions struct {
	// Interval is the time between two samples. Default 10s.
	Interval time.Duration
	// Points is how many samples a version keeps (the oldest go first).
	// Default 360: an hour at the default interval.
	Points int
}

// History samples every loaded version's figures at an interval, so
// that the console can chart them over time without a Prometheus: the
// request rate, the error rate, p50 and p99 latency (from the
// request-duration histogram's buckets, interpolated within a bucket as
// histogram_quantile does), and the drift PSI of each watched tensor.
// Run samples until its context ends; ModelHistory reads.
type History struct {
	m    *Monitor
	opts HistoryOptions

	mu     sync.Mutex
	series map[versionKey]*versionHistory
}

type versionHistory struct {
	points []HistoryPoint
	// The cumulative figures of the last sample, and the instance they
	// came from (a reload starts again from zero).
	from          *versionMetrics
	success, fail uint64
	buckets       []uint64
	last          time.Time
}

// HistoryPoint is one sample of a version.
type HistoryPoint struct {
	Time time.Time `json:"time"`
	// RequestsPerSecond and ErrorsPerSecond are the rates since the
	// previous sample.
	RequestsPerSecond float64 `json:"requests_per_second"`
	ErrorsPerSecond   float64 `json:"errors_per_second"`
	// P50Ms and P99Ms are the latency quantiles of the requests since
	// the previous sample, in milliseconds; null without requests.
	P50Ms *float64 `json:"p50_ms"`
	P99Ms *float64 `json:"p99_ms"`
	// Drift is the worst PSI of each watched tensor ("output/name",
	// "input/name", "prediction/name"), with drift monitoring.
	Drift map[string]float64 `json:"drift,omitempty"`
}

// ModelHistory is a model's samples, by version.
type ModelHistory struct {
	Model           string           `json:"model"`
	IntervalSeconds float64          `json:"interval_seconds"`
	Versions        []VersionHistory `json:"versions"`
}

// VersionHistory is one version's samples, oldest first.
type VersionHistory struct {
	Version int64          `json:"version"`
	Points  []HistoryPoint `json:"points"`
}

// NewHistory returns a History of m's versions.
func NewHistory(m *Monitor, opts HistoryOptions) *History {
	opts.Interval = cmp.Or(opts.Interval, 10*time.Second)
	opts.Points = cmp.Or(opts.Points, 360)
	return &History{m: m, opts: opts, series: map[versionKey]*versionHistory{}}
}

// Run samples at every interval until ctx ends.
func (h *History) Run(ctx context.Context) {
	t := time.NewTicker(h.opts.Interval)
	defer t.Stop()
	h.Sample(time.Now())
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			h.Sample(now)
		}
	}
}

// Sample takes one sample of every loaded version at now; versions no
// longer loaded are dropped.
func (h *History) Sample(now time.Time) {
	h.m.mu.Lock()
	live := map[versionKey]*versionMetrics{}
	for k, e := range h.m.versions {
		if len(e.live) > 0 {
			live[k] = e.live[len(e.live)-1]
		}
	}
	h.m.mu.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	for k := range h.series {
		if live[k] == nil {
			delete(h.series, k)
		}
	}
	for k, vm := range live {
		vh := h.series[k]
		if vh == nil {
			vh = &versionHistory{}
			h.series[k] = vh
		}
		success, fail := vm.stats.success.count.Load(), vm.stats.fail.count.Load()
		buckets := vm.durationBuckets()
		if vh.from != vm {
			// A new instance: its counters start at zero; this sample
			// is the baseline.
			vh.from, vh.success, vh.fail, vh.buckets, vh.last = vm, success, fail, buckets, now
			continue
		}
		dt := now.Sub(vh.last).Seconds()
		if dt <= 0 {
			continue
		}
		p := HistoryPoint{Time: now.UTC(),
			RequestsPerSecond: float64(success+fail-vh.success-vh.fail) / dt,
			ErrorsPerSecond:   float64(fail-vh.fail) / dt}
		if len(buckets) == len(vh.buckets) {
			delta := make([]uint64, len(buckets))
			for i := range buckets {
				delta[i] = buckets[i] - vh.buckets[i]
			}
			p.P50Ms = quantileMs(0.5, delta)
			p.P99Ms = quantileMs(0.99, delta)
		}
		if vm.drift != nil {
			p.Drift = map[string]float64{}
			for _, t := range vm.drift.currentReport().Tensors {
				p.Drift[t.Kind+"/"+t.Name] = t.PSI
			}
		}
		vh.points = append(vh.points, p)
		if len(vh.points) > h.opts.Points {
			vh.points = slices.Delete(vh.points, 0, len(vh.points)-h.opts.Points)
		}
		vh.success, vh.fail, vh.buckets, vh.last = success, fail, buckets, now
	}
}

// durationBuckets returns the cumulative counts of the version's
// request-duration buckets (every protocol's summed), one per bound of
// durationBuckets and the +Inf one last.
func (vm *versionMetrics) durationBuckets() []uint64 {
	out := make([]uint64, len(durationBuckets)+1)
	for _, o := range vm.duration {
		metric, ok := o.(prometheus.Metric)
		if !ok {
			continue
		}
		var d dto.Metric
		if metric.Write(&d) != nil || d.Histogram == nil {
			continue
		}
		bs := d.Histogram.GetBucket()
		if len(bs) != len(durationBuckets) {
			continue
		}
		for i, b := range bs {
			out[i] += b.GetCumulativeCount()
		}
		out[len(durationBuckets)] += d.Histogram.GetSampleCount()
	}
	return out
}

// quantileMs is the q-quantile of cumulative bucket counts over
// durationBuckets (last: +Inf), in milliseconds, interpolated linearly
// within its bucket; a quantile in the +Inf bucket is the largest bound.
// Nil without samples.
func quantileMs(q float64, cum []uint64) *float64 {
	total := cum[len(cum)-1]
	if total == 0 {
		return nil
	}
	rank := q * float64(total)
	lower, below := 0.0, 0.0
	for i, bound := range durationBuckets {
		c := float64(cum[i])
		if c >= rank {
			v := lower + (bound-lower)*(rank-below)/math.Max(c-below, 1e-300)
			v *= 1000
			return &v
		}
		lower, below = bound, c
	}
	v := durationBuckets[len(durationBuckets)-1] * 1000
	return &v
}

// ModelHistory returns a model's samples, by version; false when no
// version of it is sampled.
func (h *History) ModelHistory(model string) (any, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := ModelHistory{Model: model, IntervalSeconds: h.opts.Interval.Seconds(), Versions: []VersionHistory{}}
	for _, k := range slices.SortedFunc(maps.Keys(h.series), func(a, b versionKey) int { return cmp.Compare(a.version, b.version) }) {
		if k.model == model {
			out.Versions = append(out.Versions, VersionHistory{Version: k.version, Points: slices.Clone(h.series[k].points)})
		}
	}
	return out, len(out.Versions) > 0
}
