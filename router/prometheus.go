package router

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/infergate/infergate/monitoring/drift"
	"github.com/infergate/infergate/router/rollout/check"
)

// promFigures reads a rollout's figures from Prometheus: the series that
// every replica exports, summed, at a pinned instant.
type promFigures struct {
	api      promv1.API
	model    string
	selector string // extra label matchers, without a trailing comma
	feedback bool   // read the feedback counters (min_accuracy_ratio)
}

func newPromFigures(spec Rollout, model string) (*promFigures, error) {
	c, err := promapi.NewClient(promapi.Config{Address: spec.PrometheusURL})
	if err != nil {
		return nil, err
	}
	sel := strings.TrimSuffix(strings.TrimSpace(spec.PrometheusSelector), ",")
	return &promFigures{api: promv1.NewAPI(c), model: model, selector: sel, feedback: spec.MinAccuracyRatio > 0}, nil
}

// errorCodes are the answers that count as the canary's failures: what
// an execution failure becomes over HTTP (500) and gRPC.
const errorCodes = `500|Internal|Unknown|DataLoss`

// stepFigures are one step's figures, every replica's summed.
type stepFigures struct {
	canaryRequests, canaryErrors, stableRequests int64
	canaryHist, stableHist                       check.Histogram
	// Feedback labels and correct ones, read with min_accuracy_ratio.
	canaryLabelled, canaryCorrect, stableLabelled, stableCorrect int64
}

// matchers selects a version's series.
func (p *promFigures) matchers(version int64, extra string) string {
	m := fmt.Sprintf(`model=%q,version="%d"`, p.model, version)
	if p.selector != "" {
		m += "," + p.selector
	}
	if extra != "" {
		m += "," + extra
	}
	return m
}

// read queries the step ending at at, over window, for the canary and
// stable versions.
func (p *promFigures) read(ctx context.Context, at time.Time, window time.Duration, canary, stable int64) (stepFigures, error) {
	var f stepFigures
	w := strconv.FormatInt(window.Milliseconds(), 10) + "ms"
	counts := []struct {
		into  *int64
		query string
	}{
		{&f.canaryRequests, `sum(increase(infergate_requests_total{` + p.matchers(canary, "") + `}[` + w + `]))`},
		{&f.canaryErrors, `sum(increase(infergate_requests_total{` + p.matchers(canary, `code=~"`+errorCodes+`"`) + `}[` + w + `]))`},
		{&f.stableRequests, `sum(increase(infergate_requests_total{` + p.matchers(stable, "") + `}[` + w + `]))`},
	}
	if p.feedback {
		counts = append(counts, []struct {
			into  *int64
			query string
		}{
			{&f.canaryLabelled, `sum(increase(infergate_feedback_total{` + p.matchers(canary, `kind="label"`) + `}[` + w + `]))`},
			{&f.canaryCorrect, `sum(increase(infergate_feedback_correct_total{` + p.matchers(canary, "") + `}[` + w + `]))`},
			{&f.stableLabelled, `sum(increase(infergate_feedback_total{` + p.matchers(stable, `kind="label"`) + `}[` + w + `]))`},
			{&f.stableCorrect, `sum(increase(infergate_feedback_correct_total{` + p.matchers(stable, "") + `}[` + w + `]))`},
		}...)
	}
	for _, c := range counts {
		v, err := p.query(ctx, c.query, at)
		if err != nil {
			return f, err
		}
		total := 0.0
		for _, s := range v {
			total += float64(s.Value)
		}
		*c.into = int64(math.Round(total))
	}
	for _, h := range []struct {
		into    *check.Histogram
		version int64
	}{{&f.canaryHist, canary}, {&f.stableHist, stable}} {
		hist, err := p.latencies(ctx, p.matchers(h.version, ""), w, at)
		if err != nil {
			return f, err
		}
		*h.into = hist
	}
	return f, nil
}

// latencies reads the request-duration histogram of the series that
// matchers select over window w at at: the native histogram where
// Prometheus keeps one (--enable-feature=native-histograms; Prometheus
// 2.x then keeps no classic buckets), else the classic buckets.
func (p *promFigures) latencies(ctx context.Context, matchers, w string, at time.Time) (check.Histogram, error) {
	v, err := p.query(ctx, `sum(increase(infergate_request_duration_seconds{`+matchers+`}[`+w+`]))`, at)
	if err != nil {
		return check.Histogram{}, err
	}
	if len(v) == 1 && v[0].Histogram != nil {
		return nativeHistogram(v[0].Histogram), nil
	}
	v, err = p.query(ctx, `sum by (le) (increase(infergate_request_duration_seconds_bucket{`+matchers+`}[`+w+`]))`, at)
	if err != nil {
		return check.Histogram{}, err
	}
	return histogramOf(v)
}

// nativeHistogram makes a cumulative histogram of a native one's buckets
// (ascending, as the API answers them): each bucket's upper bound, and
// +Inf with the total.
func nativeHistogram(h *model.SampleHistogram) check.Histogram {
	var out check.Histogram
	total := 0.0
	for _, b := range h.Buckets {
		total += float64(b.Count)
		if math.IsInf(float64(b.Upper), 1) {
			continue
		}
		if n := len(out.Bounds); n > 0 && float64(b.Upper) <= out.Bounds[n-1] {
			out.Counts[n-1] = total // a bucket within the last: merge
			continue
		}
		out.Bounds, out.Counts = append(out.Bounds, float64(b.Upper)), append(out.Counts, total)
	}
	out.Bounds, out.Counts = append(out.Bounds, math.Inf(1)), append(out.Counts, max(total, float64(h.Count)))
	return out
}

// binTensor names a watched output in the drift bins.
type binTensor struct{ kind, tensor string }

// bins reads a version's drift bin counts over window at at, every
// replica's summed, shaped as ref's bins: per tensor, per element, per
// bin. Counts of bins that ref does not have are ignored.
func (p *promFigures) bins(ctx context.Context, at time.Time, window time.Duration, version int64, ref *drift.Reference) (map[binTensor][][]float64, error) {
	w := strconv.FormatInt(window.Milliseconds(), 10) + "ms"
	v, err := p.query(ctx, `sum by (kind, tensor, element, bin) (increase(infergate_rollout_drift_bins_total{`+p.matchers(version, "")+`}[`+w+`]))`, at)
	if err != nil {
		return nil, err
	}
	out := map[binTensor][][]float64{}
	shape := func(k binTensor) [][]float64 {
		if c, ok := out[k]; ok {
			return c
		}
		tr := ref.Tensor(k.kind, k.tensor)
		if tr == nil {
			return nil
		}
		var c [][]float64
		if k.kind == drift.KindPrediction {
			c = [][]float64{make([]float64, len(tr.Classes))}
		} else {
			for _, e := range tr.Elements {
				c = append(c, make([]float64, len(e.Edges)+1))
			}
		}
		out[k] = c
		return c
	}
	for _, s := range v {
		c := shape(binTensor{string(s.Metric["kind"]), string(s.Metric["tensor"])})
		e, err1 := strconv.Atoi(string(s.Metric["element"]))
		b, err2 := strconv.Atoi(string(s.Metric["bin"]))
		if c == nil || err1 != nil || err2 != nil || e < 0 || e >= len(c) || b < 0 || b >= len(c[e]) {
			continue
		}
		c[e][b] += float64(s.Value)
	}
	// Elements no replica counted (beyond max_elements) have too few
	// samples to be tested: drift.CompareCounts leaves them out.
	return out, nil
}

// query runs an instant query at at; it must answer a vector.
func (p *promFigures) query(ctx context.Context, q string, at time.Time) (model.Vector, error) {
	v, _, _, err := p.api.Query(ctx, q, at)
	if err != nil {
		return nil, fmt.Errorf("prometheus query %s: %w", q, err)
	}
	vec, ok := v.(model.Vector)
	if !ok {
		return nil, fmt.Errorf("prometheus query %s: answered a %s, not a vector", q, v.Type())
	}
	return vec, nil
}

// histogramOf makes a cumulative histogram of per-le counts; increase()
// extrapolates each bucket, so a count is kept at least its
// predecessor's. No series: an empty histogram.
func histogramOf(v model.Vector) (check.Histogram, error) {
	type bucket struct{ le, count float64 }
	var bs []bucket
	for _, s := range v {
		le, err := strconv.ParseFloat(string(s.Metric["le"]), 64)
		if err != nil {
			return check.Histogram{}, fmt.Errorf("a bucket with le=%q", s.Metric["le"])
		}
		bs = append(bs, bucket{le, float64(s.Value)})
	}
	if len(bs) == 0 {
		return check.Histogram{}, nil
	}
	slices.SortFunc(bs, func(a, b bucket) int { return cmpFloat(a.le, b.le) })
	h := check.Histogram{}
	for i, b := range bs {
		c := b.count
		if i > 0 {
			c = max(c, h.Counts[i-1])
		}
		h.Bounds, h.Counts = append(h.Bounds, b.le), append(h.Counts, c)
	}
	if !math.IsInf(h.Bounds[len(h.Bounds)-1], 1) {
		return check.Histogram{}, fmt.Errorf("the histogram has no +Inf bucket")
	}
	return h, nil
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
