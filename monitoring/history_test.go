package monitoring

import (
	"math"
	"testing"
	"time"

	"github.com/infergate/infergate/repository"
)

// TestHistory: the samples' rates and latency quantiles are those of the
// requests between two samples.
func TestHistory(t *testing.T) {
	m := New(Options{})
	obs := watching(t, m)
	v := &repository.Version{Model: "m", Number: 1, Observer: obs}
	h := NewHistory(m, HistoryOptions{Interval: time.Second, Points: 2})
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	h.Sample(t0) // the baseline
	// 98 requests of 3 ms, 2 of 300 ms, 10 of them failed, over 2 s.
	for i := range 100 {
		took, status := 3*time.Millisecond, 200
		if i >= 98 {
			took = 300 * time.Millisecond
		}
		if i < 10 {
			status = 500
		}
		m.ObserveRequest("m", v, "http", status, took, 0, 0)
	}
	h.Sample(t0.Add(2 * time.Second))
	got, ok := h.ModelHistory("m")
	if !ok {
		t.Fatal("no history")
	}
	mh := got.(ModelHistory)
	if len(mh.Versions) != 1 || len(mh.Versions[0].Points) != 1 {
		t.Fatalf("%+v", mh)
	}
	p := mh.Versions[0].Points[0]
	if p.RequestsPerSecond != 50 || p.ErrorsPerSecond != 5 {
		t.Errorf("rates %v, %v; want 50, 5", p.RequestsPerSecond, p.ErrorsPerSecond)
	}
	// 3 ms is in the (2.5 ms, 5 ms] bucket: p50 interpolates to 2.5 + 2.5·50/98.
	if want := 2.5 + 2.5*50/98; math.Abs(*p.P50Ms-want) > 1e-9 {
		t.Errorf("p50 %v ms, want %v", *p.P50Ms, want)
	}
	// 300 ms is in the (250 ms, 500 ms] bucket: rank 99 of 100, the first of its two.
	if want := 250 + 250*0.5; math.Abs(*p.P99Ms-want) > 1e-9 {
		t.Errorf("p99 %v ms, want %v", *p.P99Ms, want)
	}
	// No requests: no quantiles; Points bounds what is kept.
	h.Sample(t0.Add(3 * time.Second))
	h.Sample(t0.Add(4 * time.Second))
	got, _ = h.ModelHistory("m")
	pts := got.(ModelHistory).Versions[0].Points
	if len(pts) != 2 || pts[1].P50Ms != nil || pts[1].RequestsPerSecond != 0 {
		t.Errorf("points %+v", pts)
	}
	// An unloaded version's history goes.
	obs.Close(false)
	h.Sample(t0.Add(5 * time.Second))
	if _, ok := h.ModelHistory("m"); ok {
		t.Error("history of an unloaded version")
	}
}
