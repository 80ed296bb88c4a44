package drift

import (
	"math"
	"slices"
	"testing"
	"time"
)

// edgeRef is a reference of one input element with edges 0, 1, 2 and
// counts 10, 20, 30, 40 in its four bins.
func edgeRef() *TensorReference {
	return &TensorReference{Kind: KindInput, Name: "x", Elements: []ElementReference{
		{Edges: []float64{0, 1, 2}, Counts: []float64{10, 20, 30, 40}},
		{Edges: []float64{5, math.Nextafter(5, 6)}, Counts: []float64{0, 100, 0}}, // a constant
	}}
}

func TestWindowBins(t *testing.T) {
	t.Parallel()
	w := NewWindow(edgeRef(), 100, 0)
	now := time.Unix(0, 0)
	nan := float32(math.NaN())
	for _, s := range [][]float32{
		{-1, 5}, {0, 4}, {0.5, 6}, {1, 5}, {2, float32(math.Inf(1))}, {3, nan}, {nan, 5}, {7},
	} {
		w.Add(s, now)
	}
	sums := w.sums()
	if got, want := sums[:4], []float64{1, 2, 1, 3}; !slices.Equal(got, want) {
		t.Errorf("element 0: got counts %v, want %v", got, want)
	}
	// The constant: 4 below, 5 on it (three times), 6 and +Inf above.
	if got, want := sums[4:7], []float64{1, 3, 2}; !slices.Equal(got, want) {
		t.Errorf("element 1: got counts %v, want %v", got, want)
	}
	if got := w.Samples(); got != 8 {
		t.Errorf("got %d samples, want 8", got)
	}
	// NaN, and the short sample {7}, are counted apart.
	if got0, got1 := w.NaN(0), w.NaN(1); got0 != 1 || got1 != 2 {
		t.Errorf("got NaN counts %d, %d, want 1, 2", got0, got1)
	}
	r := w.Compare()
	if r.Elements[0].Samples != 7 || r.Elements[1].Samples != 6 || r.Tested != 0 || r.Detected || r.PValue != 1 {
		t.Errorf("got %+v, want 7 and 6 values, none tested", r)
	}
	if r.ReferenceSamples != 100 {
		t.Errorf("got %d reference samples, want 100", r.ReferenceSamples)
	}
}

func TestWindowRing(t *testing.T) {
	t.Parallel()
	ref := &TensorReference{Kind: KindPrediction, Name: "y", Classes: []float64{1, 1, 1}}
	w := NewWindow(ref, 25, 0) // chunks of 2: holds 19 to 20 samples
	now := time.Unix(0, 0)
	for i := range 20 {
		w.AddClass(0, now)
		if got := w.Samples(); got != int64(i+1) {
			t.Fatalf("got %d samples, want %d", got, i+1)
		}
	}
	w.AddClass(1, now) // full: starts a chunk, drops the oldest (2 samples)
	if got := w.Samples(); got != 19 {
		t.Errorf("got %d samples, want 19", got)
	}
	w.AddClass(3, now)  // out of range: ignored
	w.AddClass(-1, now) // likewise
	w.Add([]float32{1}, now)
	if got, want := w.sums(), []float64{18, 1, 0}; w.Samples() != 19 || !slices.Equal(got, want) {
		t.Errorf("got %d samples, counts %v, want 19, %v", w.Samples(), got, want)
	}
	for range 40 {
		w.AddClass(2, now)
	}
	if got, want := w.sums(), []float64{0, 0, 19}; !slices.Equal(got, want) {
		t.Errorf("got counts %v, want %v", got, want)
	}
	// Window size smaller than Chunks: chunks of one sample.
	small := NewWindow(ref, 3, 0)
	for range 15 {
		small.AddClass(0, now)
	}
	if got := small.Samples(); got != Chunks {
		t.Errorf("got %d samples, want %d", got, Chunks)
	}
}

func TestWindowExpire(t *testing.T) {
	t.Parallel()
	ref := &TensorReference{Kind: KindPrediction, Name: "y", Classes: []float64{1, 1}}
	w := NewWindow(ref, 100, time.Minute) // chunks of 10
	t0 := time.Unix(1000, 0)
	for i := range 35 { // one sample a second: chunks end at 9 s, 19 s, 29 s, 34 s
		w.AddClass(0, t0.Add(time.Duration(i)*time.Second))
	}
	tests := []struct {
		name string
		at   time.Duration
		want int64
	}{
		{"nothing old", 60 * time.Second, 35},
		{"exactly maxAge", 69 * time.Second, 35},
		{"first chunk", 70 * time.Second, 25},
		{"two chunks", 80 * time.Second, 15},
		{"all", 95 * time.Second, 0},
	}
	for _, tt := range tests { // in order: each step expires more
		w.Expire(t0.Add(tt.at))
		if got := w.Samples(); got != tt.want {
			t.Errorf("%s: got %d samples, want %d", tt.name, got, tt.want)
		}
	}
	// An empty window starts over.
	w.AddClass(1, t0.Add(100*time.Second))
	if got, want := w.sums(), []float64{0, 1}; !slices.Equal(got, want) {
		t.Errorf("got counts %v, want %v", got, want)
	}
	// Without maxAge nothing expires.
	v := NewWindow(ref, 100, 0)
	v.AddClass(0, t0)
	v.Expire(t0.Add(1000 * time.Hour))
	if v.Samples() != 1 {
		t.Error("expired without maxAge")
	}
}

func TestWindowAddAllocs(t *testing.T) {
	ref := uniformReference(256, 1000, 1)
	w := NewWindow(&ref.Tensors[0], 1000, time.Minute)
	sample := make([]float32, 256)
	now := time.Now()
	allocs := testing.AllocsPerRun(1000, func() {
		w.Add(sample, now)
	})
	if allocs != 0 {
		t.Errorf("got %v allocations per Add, want 0", allocs)
	}
	p := NewWindow(&TensorReference{Kind: KindPrediction, Name: "y", Classes: make([]float64, 10)}, 1000, 0)
	if allocs := testing.AllocsPerRun(1000, func() { p.AddClass(3, now) }); allocs != 0 {
		t.Errorf("got %v allocations per AddClass, want 0", allocs)
	}
}

func TestMassBelow(t *testing.T) {
	t.Parallel()
	// Edges 0, 1, 3; counts: 2 below 0, 4 in [0, 1), 6 in [1, 3), 8 above.
	edges, counts := []float64{0, 1, 3}, []float64{2, 4, 6, 8}
	tests := []struct {
		name string
		x    float64
		want float64
	}{
		{"below all", -5, 0},
		{"on the first edge", 0, 0}, // the point mass at 0 is not below 0
		{"just above it", 1e-9, 2 + 4e-9},
		{"inside the first inner bin", 0.25, 2 + 1},
		{"on an inner edge", 1, 6},
		{"inside the second", 2, 6 + 3},
		{"on the last edge", 3, 12},
		{"above all", 10, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := massBelow(edges, counts, tt.x); !near(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRemap(t *testing.T) {
	t.Parallel()
	from, src := []float64{0, 1, 3}, []float64{2, 4, 6, 8}
	tests := []struct {
		name string
		to   []float64
		want []float64
	}{
		{"same edges", []float64{0, 1, 3}, []float64{2, 4, 6, 8, 0}},
		// Bins (-∞,0.5) [0.5,2) [2,4) [4,∞): 2+2, 2+3, 3+8, 0.
		{"other edges", []float64{0.5, 2, 4}, []float64{4, 5, 11, 0, 0}},
		{"one edge", []float64{1}, []float64{6, 14, 0, 0, 0}},
		{"no edges", []float64{}, []float64{20, 0, 0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := make([]float64, 5)
			remap(got, tt.to, from, src)
			if !slices.EqualFunc(got, tt.want, near) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCompareWindowsMismatch(t *testing.T) {
	t.Parallel()
	a := NewWindow(&TensorReference{Kind: KindPrediction, Name: "y", Classes: []float64{1, 1}}, 100, 0)
	b := NewWindow(&TensorReference{Kind: KindPrediction, Name: "y", Classes: []float64{1, 1, 1}}, 100, 0)
	for range 100 {
		a.AddClass(0, time.Time{})
		b.AddClass(1, time.Time{})
	}
	if r := CompareWindows(a, b); r.Tested != 0 || r.Detected || r.PValue != 1 || r.Samples != 100 || r.ReferenceSamples != 100 {
		t.Errorf("got %+v, want nothing tested", r)
	}
}

// TestCompareCounts: counts compared as CompareWindows compares windows:
// the same distribution is not drift, a shifted one is.
func TestCompareCounts(t *testing.T) {
	same := [][]float64{{100, 100, 100, 100}, {50, 150, 150, 50}}
	if r := CompareCounts(same, same); r.Detected || r.PValue != 1 || r.Samples != 400 {
		t.Errorf("same counts: %+v", r)
	}
	shifted := [][]float64{{10, 20, 100, 270}, {50, 150, 150, 50}}
	if r := CompareCounts(shifted, same); !r.Detected || r.PSI < MinPSI || r.Tested != 2 {
		t.Errorf("shifted counts: %+v", r)
	}
	if r := CompareCounts([][]float64{{1, 2}}, same); r.Detected || r.PValue != 1 {
		t.Errorf("mismatched shapes: %+v", r)
	}
}
