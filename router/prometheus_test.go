package router

import (
	"math"
	"slices"
	"testing"

	"github.com/prometheus/common/model"
)

// TestHistograms: the classic buckets and native histograms that
// Prometheus answers become the same cumulative histogram.
func TestHistograms(t *testing.T) {
	classic := model.Vector{
		{Metric: model.Metric{"le": "+Inf"}, Value: 10},
		{Metric: model.Metric{"le": "0.1"}, Value: 4},
		{Metric: model.Metric{"le": "0.2"}, Value: 3.9}, // increase() extrapolated below its predecessor
	}
	h, err := histogramOf(classic)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(h.Bounds, []float64{0.1, 0.2, math.Inf(1)}) || !slices.Equal(h.Counts, []float64{4, 4, 10}) {
		t.Errorf("classic: %+v", h)
	}
	if _, err := histogramOf(model.Vector{{Metric: model.Metric{"le": "0.1"}, Value: 1}}); err == nil {
		t.Error("classic buckets without +Inf accepted")
	}
	native := &model.SampleHistogram{Count: 10, Buckets: model.HistogramBuckets{
		{Lower: 0.05, Upper: 0.1, Count: 4},
		{Lower: 0.1, Upper: 0.2, Count: 0},
		{Lower: 0.2, Upper: 0.4, Count: 6},
	}}
	n := nativeHistogram(native)
	if !slices.Equal(n.Bounds, []float64{0.1, 0.2, 0.4, math.Inf(1)}) || !slices.Equal(n.Counts, []float64{4, 4, 10, 10}) {
		t.Errorf("native: %+v", n)
	}
}
