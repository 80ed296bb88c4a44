package drift

import (
	"math"
	"testing"
)

func near(got, want float64) bool {
	return math.Abs(got-want) <= 1e-9*max(1, math.Abs(want))
}

func TestPSI(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p, q []float64
		want float64
	}{
		{"same", []float64{10, 20, 70}, []float64{1, 2, 7}, 0},
		{"half to a quarter", []float64{50, 50}, []float64{25, 75}, -0.25*math.Log(0.5) + 0.25*math.Log(1.5)},
		// An empty window bin is floored at Epsilon: (ε−0.5)·ln(ε/0.5) + (1−0.5)·ln(1/0.5).
		{"empty window bin", []float64{1, 1}, []float64{0, 4}, (Epsilon-0.5)*math.Log(Epsilon/0.5) + 0.5*math.Log(2)},
		{"bins empty on both sides", []float64{0, 5, 5, 0}, []float64{0, 1, 1, 0}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := psi(tt.p, tt.q, sum(tt.p), sum(tt.q)); !near(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestKS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p, q []float64
		want float64
	}{
		{"same", []float64{1, 2, 3}, []float64{2, 4, 6}, 0},
		{"two bins", []float64{50, 50}, []float64{25, 75}, 0.25},
		// CDFs 0.25, 0.5, 0.75 against 0, 0.5, 1: largest gap 0.25 at the
		// first boundary; the last boundary (both 1) does not count.
		{"largest gap", []float64{1, 1, 1, 1}, []float64{0, 2, 2, 0}, 0.25},
		{"disjoint", []float64{3, 0}, []float64{0, 3}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := ks(tt.p, tt.q, sum(tt.p), sum(tt.q)); !near(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestJS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p, q []float64
		want float64
	}{
		{"same", []float64{1, 3}, []float64{2, 6}, 0},
		{"disjoint", []float64{1, 0}, []float64{0, 1}, 1},
		// m = (0.75, 0.25); KL(p‖m) = 0.5·log2(2/3) + 0.5·log2(2),
		// KL(q‖m) = log2(4/3); the distance is the root of their mean.
		{"half against all", []float64{1, 1}, []float64{1, 0},
			math.Sqrt((0.5*math.Log2(2.0/3) + 0.5*math.Log2(2) + math.Log2(4.0/3)) / 2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := js(tt.p, tt.q, sum(tt.p), sum(tt.q)); !near(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// chi2x2 is Pearson's statistic of the 2×2 table [[a, b], [c, d]].
func chi2x2(a, b, c, d float64) float64 {
	n := a + b + c + d
	r1, r2, c1, c2 := a+b, c+d, a+c, b+d
	e := func(o, row, col float64) float64 { x := row * col / n; return (o - x) * (o - x) / x }
	return e(a, r1, c1) + e(b, r1, c2) + e(c, r2, c1) + e(d, r2, c2)
}

func TestChiSquarePooling(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		p, q     []float64
		wantStat float64
		wantDF   int
	}{
		// Expected counts 40, 60 in both rows: no pooling. 5 + 3.333.
		{"2x2", []float64{30, 70}, []float64{50, 50}, 100.0/40*2 + 100.0/60*2, 1},
		// Smaller-row share 22/48: column expectations 0.92, 0.92, 1.83,
		// 9.17 | 7.33 | 1.83: groups {0..3}, {4}, and a short {5} that
		// merges into {4}: the 2×2 table [[15, 11], [13, 9]].
		{"pool and merge the leftover", []float64{2, 0, 3, 10, 10, 1}, []float64{0, 2, 1, 10, 6, 3}, chi2x2(15, 11, 13, 9), 1},
		// Everything pools into one column: df 0.
		{"too few", []float64{2, 2, 2}, []float64{1, 1, 1}, 0, 0},
		// Empty bins anywhere pool away.
		{"empty bins", []float64{0, 30, 0, 70, 0}, []float64{0, 50, 0, 50, 0}, 100.0/40*2 + 100.0/60*2, 1},
		// Three groups: {0}, {1}, {2, 3} (3 short, merged).
		{"three groups", []float64{20, 20, 20, 1}, []float64{10, 20, 30, 1},
			chi3(20, 20, 21, 10, 20, 31), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stat, df := chiSquare(tt.p, tt.q, sum(tt.p), sum(tt.q))
			if !near(stat, tt.wantStat) || df != tt.wantDF {
				t.Errorf("got χ² %v df %d, want %v df %d", stat, df, tt.wantStat, tt.wantDF)
			}
		})
	}
}

// chi3 is Pearson's statistic of the 2×3 table [[a, b, c], [d, e, f]].
func chi3(a, b, c, d, e, f float64) float64 {
	rows := [2][3]float64{{a, b, c}, {d, e, f}}
	var n, rt [2]float64
	var ct [3]float64
	for i := range rows {
		for j := range rows[i] {
			rt[i] += rows[i][j]
			ct[j] += rows[i][j]
			n[0] += rows[i][j]
		}
	}
	var s float64
	for i := range rows {
		for j := range rows[i] {
			x := rt[i] * ct[j] / n[0]
			s += (rows[i][j] - x) * (rows[i][j] - x) / x
		}
	}
	return s
}

func TestChiSquarePValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		stat float64
		df   int
		want float64
	}{
		// With one degree of freedom, P(χ² > x) = erfc(√(x/2)).
		{"df 1", 8.333333333333334, 1, math.Erfc(math.Sqrt(8.333333333333334 / 2))},
		// With two, P(χ² > x) = exp(−x/2).
		{"df 2", 6, 2, math.Exp(-3)},
		{"no freedom", 100, 0, 1},
		{"no difference", 0, 4, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := chiSquarePValue(tt.stat, tt.df); math.Abs(got-tt.want) > 1e-12 {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDecision(t *testing.T) {
	t.Parallel()
	// Reference 1000 per bin in 4 bins.
	ref := []float64{1000, 1000, 1000, 1000}
	tests := []struct {
		name   string
		window [][]float64 // one per element
		want   Result      // Tested, Detected, and which elements are
		detect []bool
	}{
		{"none tested", [][]float64{{10, 10, 10, 10}, {0, 0, 0, 0}}, Result{Tested: 0}, []bool{false, false}},
		{"same", [][]float64{{100, 100, 100, 100}, {100, 100, 100, 100}}, Result{Tested: 2}, []bool{false, false}},
		{"one shifted", [][]float64{{100, 100, 100, 100}, {0, 100, 100, 200}}, Result{Tested: 2, Detected: true}, []bool{false, true}},
		// Significant (χ² ≈ 92, p ≈ 1e-19) but small: PSI ≈ 0.046 < MinPSI.
		{"significant, small", [][]float64{{700, 1000, 1000, 1300}}, Result{Tested: 1}, []bool{false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev := newEvaluation(len(tt.window))
			for i, q := range tt.window {
				ev.compare(i, ref, q, 0)
			}
			got := ev.result(400, 4000)
			if got.Tested != tt.want.Tested || got.Detected != tt.want.Detected {
				t.Fatalf("got tested %d detected %v, want %d %v", got.Tested, got.Detected, tt.want.Tested, tt.want.Detected)
			}
			m := float64(got.Tested)
			for i, e := range got.Elements {
				if e.Detected != tt.detect[i] {
					t.Errorf("element %d: got detected %v, want %v", i, e.Detected, tt.detect[i])
				}
				if got.Tested == 0 {
					if e.PValue != 1 || e.PSI != 0 {
						t.Errorf("element %d: got p %v psi %v, want 1 and 0", i, e.PValue, e.PSI)
					}
					continue
				}
				s := compareCounts(ref, tt.window[i])
				if !near(e.PValue, min(1, m*s.p)) || !near(e.PSI, s.psi) {
					t.Errorf("element %d: got p %v psi %v, want %v %v", i, e.PValue, e.PSI, min(1, m*s.p), s.psi)
				}
			}
			if got.Tested == 0 && (got.PValue != 1 || got.PSI != 0 || got.KS != 0 || got.JS != 0) {
				t.Errorf("got %+v, want p 1 and scores 0", got)
			}
		})
	}
}
