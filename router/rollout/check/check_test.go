package check

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestVerdictString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		v    Verdict
		want string
	}{
		{name: "inconclusive", v: Inconclusive, want: "inconclusive"},
		{name: "pass", v: Pass, want: "pass"},
		{name: "fail", v: Fail, want: "fail"},
		{name: "unknown", v: Verdict(7), want: "verdict(7)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.v.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestResultJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		r    Result
		want string
	}{
		{
			name: "finite",
			r:    Result{Name: "error_rate", Verdict: Pass, Value: 0, Limit: 0.01, Lower: 0, Upper: 0.5, Samples: 300, Reason: "ok"},
			want: `{"name":"error_rate","verdict":"pass","value":0,"limit":0.01,"lower":0,"upper":0.5,"samples":300,"reason":"ok"}`,
		},
		{
			name: "non-finite as null",
			r:    Result{Name: "p99_ratio", Verdict: Fail, Value: math.NaN(), Limit: 1.5, Lower: math.Inf(1), Upper: math.Inf(-1), Samples: 400},
			want: `{"name":"p99_ratio","verdict":"fail","value":null,"limit":1.5,"lower":null,"upper":null,"samples":400,"reason":""}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := json.Marshal(tt.r)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if got := string(b); got != tt.want {
				t.Errorf("Marshal = %s, want %s", got, tt.want)
			}
			b, err = json.Marshal(&tt.r)
			if err != nil {
				t.Fatalf("Marshal pointer: %v", err)
			}
			if got := string(b); got != tt.want {
				t.Errorf("Marshal pointer = %s, want %s", got, tt.want)
			}
		})
	}
}

// The wanted bounds were computed apart from gonum, by bisection on exact
// binomial tail sums; the 97.5% ones are the classic two-sided 95%
// Clopper–Pearson intervals (e.g. 5 of 100: [0.0164, 0.1128]).
func TestClopperPearson(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		x, n         int64
		confidence   float64
		lower, upper float64
	}{
		{name: "0 of 300 at 95%", x: 0, n: 300, confidence: 0.95, lower: 0, upper: 0.00993608194445771},
		{name: "0 of 298 at 95%", x: 0, n: 298, confidence: 0.95, lower: 0, upper: 0.010002432437677691},
		{name: "0 of 299 at 95%", x: 0, n: 299, confidence: 0.95, lower: 0, upper: 0.009969146792899269},
		{name: "0 of 10 at 97.5%", x: 0, n: 10, confidence: 0.975, lower: 0, upper: 0.3084971078187607},
		{name: "10 of 10 at 97.5%", x: 10, n: 10, confidence: 0.975, lower: 0.6915028921812356, upper: 1},
		{name: "1 of 10 at 97.5%", x: 1, n: 10, confidence: 0.975, lower: 0.0025285785444617813, upper: 0.44501611702819543},
		{name: "5 of 100 at 97.5%", x: 5, n: 100, confidence: 0.975, lower: 0.016431879182046985, upper: 0.11283491110546295},
		{name: "1 of 100 at 95%", x: 1, n: 100, confidence: 0.95, lower: 0.000512801416262292, upper: 0.046559811453538755},
		{name: "30 of 1000 at 95%", x: 30, n: 1000, confidence: 0.95, lower: 0.021674784293134394, upper: 0.040472237280864035},
		{name: "12 of 1000 at 95%", x: 12, n: 1000, confidence: 0.95, lower: 0.006938388047859333, upper: 0.019370199285059814},
		{name: "no trials", x: 0, n: 0, confidence: 0.95, lower: 0, upper: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lower, upper := clopperPearson(tt.x, tt.n, tt.confidence)
			if !close(lower, tt.lower) || !close(upper, tt.upper) {
				t.Errorf("clopperPearson(%d, %d, %g) = [%.12g, %.12g], want [%.12g, %.12g]",
					tt.x, tt.n, tt.confidence, lower, upper, tt.lower, tt.upper)
			}
		})
	}
	// With no error the upper bound has a closed form, 1 − α^(1/n).
	for _, n := range []int64{1, 50, 300, 10000} {
		_, upper := clopperPearson(0, n, 0.95)
		want := 1 - math.Pow(0.05, 1/float64(n))
		if !close(upper, want) {
			t.Errorf("clopperPearson(0, %d, 0.95) upper = %.12g, want %.12g", n, upper, want)
		}
	}
}

// close reports whether got is within 1e-9 relative (or absolute, near 0)
// of want.
func close(got, want float64) bool {
	return math.Abs(got-want) <= 1e-9*max(1, math.Abs(want))
}

func TestErrorRate(t *testing.T) {
	t.Parallel()
	nan := math.NaN()
	tests := []struct {
		name       string
		errors     int64
		requests   int64
		maxRate    float64
		confidence float64
		want       Verdict
		reason     string // a part of the reason
	}{
		{name: "no error in 300 passes", errors: 0, requests: 300, maxRate: 0.01, confidence: 0.95, want: Pass, reason: "upper bound 0.009936 ≤ 0.01"},
		{name: "no error in 299 passes", errors: 0, requests: 299, maxRate: 0.01, confidence: 0.95, want: Pass},
		{name: "no error in 298 is inconclusive", errors: 0, requests: 298, maxRate: 0.01, confidence: 0.95, want: Inconclusive, reason: "straddle"},
		{name: "no error in 20 is inconclusive", errors: 0, requests: 20, maxRate: 0.01, confidence: 0.95, want: Inconclusive},
		{name: "1 in 20 is inconclusive", errors: 1, requests: 20, maxRate: 0.01, confidence: 0.95, want: Inconclusive},
		{name: "1 in 100 is inconclusive", errors: 1, requests: 100, maxRate: 0.01, confidence: 0.95, want: Inconclusive},
		{name: "5 in 1000 is inconclusive", errors: 5, requests: 1000, maxRate: 0.01, confidence: 0.95, want: Inconclusive},
		{name: "5 in 10000 passes", errors: 5, requests: 10000, maxRate: 0.01, confidence: 0.95, want: Pass},
		{name: "12 in 1000 is inconclusive", errors: 12, requests: 1000, maxRate: 0.01, confidence: 0.95, want: Inconclusive},
		{name: "30 in 1000 fails", errors: 30, requests: 1000, maxRate: 0.01, confidence: 0.95, want: Fail, reason: "lower bound 0.02167 > 0.01"},
		{name: "5 in 100 fails at 97.5%", errors: 5, requests: 100, maxRate: 0.01, confidence: 0.975, want: Fail},
		{name: "all errors fail", errors: 10, requests: 10, maxRate: 0.01, confidence: 0.95, want: Fail},
		{name: "all errors pass a limit of 1", errors: 10, requests: 10, maxRate: 1, confidence: 0.95, want: Pass},
		{name: "a limit of 0 fails on one error", errors: 1, requests: 1000000, maxRate: 0, confidence: 0.95, want: Fail},
		{name: "a limit of 0 never passes", errors: 0, requests: 1000000, maxRate: 0, confidence: 0.95, want: Inconclusive},
		{name: "no requests", errors: 0, requests: 0, maxRate: 0.01, confidence: 0.95, want: Inconclusive, reason: "no requests"},
		{name: "negative errors", errors: -1, requests: 10, maxRate: 0.01, confidence: 0.95, want: Inconclusive, reason: "errors -1 is negative"},
		{name: "negative requests", errors: 0, requests: -10, maxRate: 0.01, confidence: 0.95, want: Inconclusive, reason: "requests -10 is negative"},
		{name: "more errors than requests", errors: 11, requests: 10, maxRate: 0.01, confidence: 0.95, want: Inconclusive, reason: "errors 11 > requests 10"},
		{name: "NaN max rate", errors: 0, requests: 1000, maxRate: nan, confidence: 0.95, want: Inconclusive, reason: "max rate NaN"},
		{name: "negative max rate", errors: 0, requests: 1000, maxRate: -0.01, confidence: 0.95, want: Inconclusive, reason: "max rate -0.01"},
		{name: "max rate above 1", errors: 0, requests: 1000, maxRate: 2, confidence: 0.95, want: Inconclusive, reason: "max rate 2"},
		{name: "NaN confidence", errors: 0, requests: 1000, maxRate: 0.01, confidence: nan, want: Inconclusive, reason: "confidence NaN"},
		{name: "confidence 1", errors: 0, requests: 1000, maxRate: 0.01, confidence: 1, want: Inconclusive, reason: "confidence 1 not in [0.5, 1)"},
		{name: "confidence below 0.5", errors: 0, requests: 1000, maxRate: 0.01, confidence: 0.3, want: Inconclusive, reason: "confidence 0.3"},
		{name: "huge counts", errors: 1 << 40, requests: 1 << 50, maxRate: 0.01, confidence: 0.95, want: Pass},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := ErrorRate(tt.errors, tt.requests, tt.maxRate, tt.confidence)
			if r.Verdict != tt.want || !strings.Contains(r.Reason, tt.reason) {
				t.Errorf("ErrorRate(%d, %d, %g, %g) = %v (%q), want %v (%q)",
					tt.errors, tt.requests, tt.maxRate, tt.confidence, r.Verdict, r.Reason, tt.want, tt.reason)
			}
			if r.Name != "error_rate" || r.Samples != tt.requests {
				t.Errorf("name, samples = %q, %d, want error_rate, %d", r.Name, r.Samples, tt.requests)
			}
			if r.Verdict != Inconclusive {
				if got, want := r.Value, float64(tt.errors)/float64(tt.requests); got != want {
					t.Errorf("value = %g, want %g", got, want)
				}
				if !(r.Lower <= r.Value && r.Value <= r.Upper) {
					t.Errorf("bounds [%g, %g] do not hold value %g", r.Lower, r.Upper, r.Value)
				}
			}
			if _, err := json.Marshal(r); err != nil {
				t.Errorf("Marshal: %v", err)
			}
		})
	}
}

func TestMinP99Samples(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		confidence float64
		want       int
	}{
		{name: "95%", confidence: 0.95, want: 368},
		{name: "90%", confidence: 0.90, want: 299},
		{name: "99%", confidence: 0.99, want: 528},
		{name: "50%", confidence: 0.5, want: 138},
		{name: "99.9%", confidence: 0.999, want: 757},
		{name: "confidence 1", confidence: 1, want: 0},
		{name: "confidence below 0.5", confidence: 0.4, want: 0},
		{name: "NaN confidence", confidence: math.NaN(), want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := MinP99Samples(tt.confidence)
			if got != tt.want {
				t.Fatalf("MinP99Samples(%g) = %d, want %d", tt.confidence, got, tt.want)
			}
			if got == 0 {
				return
			}
			// The order-statistic bounds exist from that n, not before,
			// and at it the upper bound is the sample's maximum.
			level := 1 - (1-tt.confidence)/2
			if _, _, ok := quantileRanks(got-1, p99, level); ok {
				t.Errorf("quantileRanks(%d, 0.99, %g) exists, want none below the minimum", got-1, level)
			}
			_, upper, ok := quantileRanks(got, p99, level)
			if !ok || upper != got {
				t.Errorf("quantileRanks(%d, 0.99, %g) upper = %d, %v, want %d, true", got, level, upper, ok, got)
			}
		})
	}
}

// The wanted ranks were computed apart from gonum, from exact binomial
// sums.
func TestQuantileRanks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		n            int
		lower, upper int
		ok           bool
	}{
		{name: "0", n: 0},
		{name: "1", n: 1},
		{name: "367", n: 367},
		{name: "368", n: 368, lower: 360, upper: 368, ok: true},
		{name: "1000", n: 1000, lower: 983, upper: 997, ok: true},
		{name: "5000", n: 5000, lower: 4936, upper: 4964, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lower, upper, ok := quantileRanks(tt.n, p99, 0.975)
			if ok != tt.ok || ok && (lower != tt.lower || upper != tt.upper) {
				t.Errorf("quantileRanks(%d, 0.99, 0.975) = %d, %d, %v, want %d, %d, %v",
					tt.n, lower, upper, ok, tt.lower, tt.upper, tt.ok)
			}
		})
	}
}

// TestQuantileBoundsCoverage draws uniform samples, whose 0.99 quantile is
// 0.99, and counts how often each one-sided bound at 97.5% holds it.
func TestQuantileBoundsCoverage(t *testing.T) {
	t.Parallel()
	const reps, n, level = 2000, 400, 0.975
	rng := rand.New(rand.NewPCG(7, 7))
	x := make([]float64, n)
	var lowerHeld, upperHeld int
	for range reps {
		for i := range x {
			x[i] = rng.Float64()
		}
		slices.Sort(x)
		lower, upper, ok := quantileBounds(x, p99, level)
		if !ok {
			t.Fatalf("quantileBounds of %d: none", n)
		}
		if lower <= p99 {
			lowerHeld++
		}
		if upper >= p99 {
			upperHeld++
		}
	}
	// Each holds with probability ≥ 0.975; 0.965 leaves four standard
	// errors of 2000 draws.
	for _, c := range []struct {
		name string
		held int
	}{{"lower", lowerHeld}, {"upper", upperHeld}} {
		if got := float64(c.held) / reps; got < 0.965 {
			t.Errorf("%s bound held %.4f of draws, want ≥ 0.975 (0.965 with sampling error)", c.name, got)
		}
	}
}

// exponential returns n exponential latencies of mean scale·50ms.
func exponential(seed uint64, n int, scale float64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 1))
	x := make([]float64, n)
	for i := range x {
		x[i] = scale * 0.05 * rng.ExpFloat64()
	}
	return x
}

func TestP99Ratio(t *testing.T) {
	t.Parallel()
	fill := func(n int, v float64) []float64 {
		x := make([]float64, n)
		for i := range x {
			x[i] = v
		}
		return x
	}
	with := func(x []float64, i int, v float64) []float64 {
		x = slices.Clone(x)
		x[i] = v
		return x
	}
	big := exponential(2, 5000, 1)
	tests := []struct {
		name           string
		canary, stable []float64
		maxRatio       float64
		confidence     float64
		want           Verdict
		reason         string // a part of the reason
	}{
		{name: "same latencies, 5000 each, pass", canary: exponential(1, 5000, 1), stable: big, maxRatio: 1.5, confidence: 0.95, want: Pass, reason: "upper bound 1.138 ≤ 1.5"},
		{name: "same latencies, 2000 each, pass", canary: exponential(1, 2000, 1), stable: exponential(2, 2000, 1), maxRatio: 1.5, confidence: 0.95, want: Pass},
		{name: "1.3 times slower, 5000 each, pass", canary: exponential(1, 5000, 1.3), stable: big, maxRatio: 1.5, confidence: 0.95, want: Pass},
		{name: "1.5 times slower, 5000 each, inconclusive", canary: exponential(1, 5000, 1.5), stable: big, maxRatio: 1.5, confidence: 0.95, want: Inconclusive, reason: "straddle"},
		{name: "2 times slower, 5000 each, fail", canary: exponential(1, 5000, 2), stable: big, maxRatio: 1.5, confidence: 0.95, want: Fail},
		{name: "3 times slower, 5000 each, fail", canary: exponential(1, 5000, 3), stable: big, maxRatio: 1.5, confidence: 0.95, want: Fail, reason: "lower bound 2.678 > 1.5"},
		{name: "3 times slower, 1000 each, fail", canary: exponential(1, 1000, 3), stable: exponential(2, 1000, 1), maxRatio: 1.5, confidence: 0.95, want: Fail},
		{name: "same latencies, 368 each, inconclusive", canary: exponential(1, 368, 1), stable: exponential(2, 368, 1), maxRatio: 1.5, confidence: 0.95, want: Inconclusive, reason: "straddle"},
		{name: "3 times slower, 368 each, inconclusive", canary: exponential(1, 368, 3), stable: exponential(2, 368, 1), maxRatio: 1.5, confidence: 0.95, want: Inconclusive, reason: "straddle"},
		{name: "small canary", canary: exponential(1, 100, 3), stable: big, maxRatio: 1.5, confidence: 0.95, want: Inconclusive, reason: "need at least 368 samples (canary 100, stable 5000)"},
		{name: "small stable", canary: big, stable: exponential(2, 367, 1), maxRatio: 1.5, confidence: 0.95, want: Inconclusive, reason: "need at least 368 samples"},
		{name: "small at 99%", canary: exponential(1, 500, 1), stable: exponential(2, 500, 1), maxRatio: 1.5, confidence: 0.99, want: Inconclusive, reason: "need at least 528 samples"},
		{name: "empty", canary: nil, stable: nil, maxRatio: 1.5, confidence: 0.95, want: Inconclusive, reason: "need at least 368 samples"},
		{name: "stable takes no time", canary: fill(400, 0.1), stable: fill(400, 0), maxRatio: 1.5, confidence: 0.95, want: Fail},
		{name: "neither takes time", canary: fill(400, 0), stable: fill(400, 0), maxRatio: 1.5, confidence: 0.95, want: Pass},
		{name: "constant equal", canary: fill(400, 0.1), stable: fill(400, 0.1), maxRatio: 1.5, confidence: 0.95, want: Pass},
		{name: "NaN latency", canary: with(big, 17, math.NaN()), stable: big, maxRatio: 1.5, confidence: 0.95, want: Inconclusive, reason: "canary latency 17 is NaN"},
		{name: "infinite latency", canary: big, stable: with(big, 3, math.Inf(1)), maxRatio: 1.5, confidence: 0.95, want: Inconclusive, reason: "stable latency 3 is +Inf"},
		{name: "negative latency", canary: with(big, 0, -1), stable: big, maxRatio: 1.5, confidence: 0.95, want: Inconclusive, reason: "canary latency 0 is -1"},
		{name: "NaN max ratio", canary: big, stable: big, maxRatio: math.NaN(), confidence: 0.95, want: Inconclusive, reason: "max ratio NaN"},
		{name: "zero max ratio", canary: big, stable: big, maxRatio: 0, confidence: 0.95, want: Inconclusive, reason: "max ratio 0"},
		{name: "infinite max ratio", canary: big, stable: big, maxRatio: math.Inf(1), confidence: 0.95, want: Inconclusive, reason: "max ratio +Inf"},
		{name: "bad confidence", canary: big, stable: big, maxRatio: 1.5, confidence: 1.5, want: Inconclusive, reason: "confidence 1.5 not in [0.5, 1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			canary, stable := slices.Clone(tt.canary), slices.Clone(tt.stable)
			r := P99Ratio(tt.canary, tt.stable, tt.maxRatio, tt.confidence)
			if r.Verdict != tt.want || !strings.Contains(r.Reason, tt.reason) {
				t.Errorf("P99Ratio(%d, %d latencies, %g, %g) = %v (%q), want %v (%q)",
					len(tt.canary), len(tt.stable), tt.maxRatio, tt.confidence, r.Verdict, r.Reason, tt.want, tt.reason)
			}
			if !slices.EqualFunc(tt.canary, canary, sameFloat) || !slices.EqualFunc(tt.stable, stable, sameFloat) {
				t.Errorf("P99Ratio changed its inputs")
			}
			if got, want := r.Samples, int64(min(len(tt.canary), len(tt.stable))); r.Name != "p99_ratio" || got != want {
				t.Errorf("name, samples = %q, %d, want p99_ratio, %d", r.Name, got, want)
			}
			if r.Verdict != Inconclusive && !(r.Lower <= r.Value && r.Value <= r.Upper) {
				t.Errorf("bounds [%g, %g] do not hold value %g", r.Lower, r.Upper, r.Value)
			}
			if _, err := json.Marshal(r); err != nil {
				t.Errorf("Marshal: %v", err)
			}
		})
	}
}

func TestDrift(t *testing.T) {
	t.Parallel()
	nan := math.NaN()
	tests := []struct {
		name       string
		psi        float64
		pValue     float64
		samples    int64
		maxPSI     float64
		confidence float64
		want       Verdict
		reason     string // a part of the reason
	}{
		{name: "large and significant fails", psi: 0.31, pValue: 1e-6, samples: 1000, maxPSI: 0.2, confidence: 0.95, want: Fail, reason: "psi 0.31 > 0.2 and p-value 1e-06 < 0.05"},
		{name: "infinite psi and significant fails", psi: math.Inf(1), pValue: 0, samples: 1000, maxPSI: 0.2, confidence: 0.95, want: Fail},
		{name: "large and significant fails with few samples", psi: 0.5, pValue: 0.01, samples: 20, maxPSI: 0.2, confidence: 0.95, want: Fail},
		{name: "large but not significant", psi: 0.31, pValue: 0.2, samples: 1000, maxPSI: 0.2, confidence: 0.95, want: Inconclusive, reason: "not significant"},
		{name: "large, p-value just above the level", psi: 0.31, pValue: 0.0101, samples: 1000, maxPSI: 0.2, confidence: 0.99, want: Inconclusive, reason: "not significant"},
		{name: "small passes", psi: 0.05, pValue: 0.5, samples: 1000, maxPSI: 0.2, confidence: 0.95, want: Pass, reason: "psi 0.05 ≤ 0.2 with 1000 samples"},
		{name: "small and significant passes", psi: 0.05, pValue: 1e-9, samples: 200000, maxPSI: 0.2, confidence: 0.95, want: Pass},
		{name: "at the limit passes", psi: 0.2, pValue: 0, samples: 50, maxPSI: 0.2, confidence: 0.95, want: Pass},
		{name: "small with too few samples", psi: 0.05, pValue: 1, samples: 49, maxPSI: 0.2, confidence: 0.95, want: Inconclusive, reason: "only 49 samples, need at least 50"},
		{name: "no samples", psi: 0, pValue: 1, samples: 0, maxPSI: 0.2, confidence: 0.95, want: Inconclusive, reason: "only 0 samples"},
		{name: "NaN psi", psi: nan, pValue: 0.01, samples: 1000, maxPSI: 0.2, confidence: 0.95, want: Inconclusive, reason: "psi NaN"},
		{name: "negative psi", psi: -0.1, pValue: 0.01, samples: 1000, maxPSI: 0.2, confidence: 0.95, want: Inconclusive, reason: "psi -0.1"},
		{name: "NaN p-value", psi: 0.3, pValue: nan, samples: 1000, maxPSI: 0.2, confidence: 0.95, want: Inconclusive, reason: "p-value NaN"},
		{name: "p-value above 1", psi: 0.3, pValue: 1.5, samples: 1000, maxPSI: 0.2, confidence: 0.95, want: Inconclusive, reason: "p-value 1.5"},
		{name: "negative p-value", psi: 0.3, pValue: -0.5, samples: 1000, maxPSI: 0.2, confidence: 0.95, want: Inconclusive, reason: "p-value -0.5"},
		{name: "negative samples", psi: 0.05, pValue: 0.5, samples: -1, maxPSI: 0.2, confidence: 0.95, want: Inconclusive, reason: "samples -1"},
		{name: "NaN max psi", psi: 0.05, pValue: 0.5, samples: 1000, maxPSI: nan, confidence: 0.95, want: Inconclusive, reason: "max psi NaN"},
		{name: "infinite max psi", psi: 0.05, pValue: 0.5, samples: 1000, maxPSI: math.Inf(1), confidence: 0.95, want: Inconclusive, reason: "max psi +Inf"},
		{name: "bad confidence", psi: 0.05, pValue: 0.5, samples: 1000, maxPSI: 0.2, confidence: 0, want: Inconclusive, reason: "confidence 0 not in [0.5, 1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := Drift(tt.psi, tt.pValue, tt.samples, tt.maxPSI, tt.confidence)
			if r.Verdict != tt.want || !strings.Contains(r.Reason, tt.reason) {
				t.Errorf("Drift(%g, %g, %d, %g, %g) = %v (%q), want %v (%q)",
					tt.psi, tt.pValue, tt.samples, tt.maxPSI, tt.confidence, r.Verdict, r.Reason, tt.want, tt.reason)
			}
			if r.Name != "drift" || r.Samples != tt.samples || !sameFloat(r.Value, tt.psi) {
				t.Errorf("name, samples, value = %q, %d, %g, want drift, %d, %g", r.Name, r.Samples, r.Value, tt.samples, tt.psi)
			}
			if _, err := json.Marshal(r); err != nil {
				t.Errorf("Marshal: %v", err)
			}
		})
	}
}

// sameFloat reports whether a and b are equal or both NaN.
func sameFloat(a, b float64) bool {
	return a == b || math.IsNaN(a) && math.IsNaN(b)
}

// The checks never panic and always say why.
func FuzzErrorRate(f *testing.F) {
	f.Add(int64(0), int64(300), 0.01, 0.95)
	f.Add(int64(10), int64(10), 0.01, 0.95)
	f.Add(int64(-1), int64(0), math.NaN(), 1.0)
	f.Fuzz(func(t *testing.T, errors, requests int64, maxRate, confidence float64) {
		r := ErrorRate(errors, requests, maxRate, confidence)
		if r.Reason == "" || r.Verdict < Inconclusive || r.Verdict > Fail {
			t.Errorf("ErrorRate(%d, %d, %g, %g) = %+v, want a verdict and a reason", errors, requests, maxRate, confidence, r)
		}
	})
}

func FuzzDrift(f *testing.F) {
	f.Add(0.31, 1e-6, int64(1000), 0.2, 0.95)
	f.Add(math.NaN(), -1.0, int64(-1), math.Inf(1), 2.0)
	f.Fuzz(func(t *testing.T, psi, pValue float64, samples int64, maxPSI, confidence float64) {
		r := Drift(psi, pValue, samples, maxPSI, confidence)
		if r.Reason == "" || r.Verdict < Inconclusive || r.Verdict > Fail {
			t.Errorf("Drift(%g, %g, %d, %g, %g) = %+v, want a verdict and a reason", psi, pValue, samples, maxPSI, confidence, r)
		}
	})
}

// TestP99RatioHistogram: histograms made of the same latencies give the
// same verdicts as the samples do where the buckets are fine, and the
// interpolation and validation behave.
func TestP99RatioHistogram(t *testing.T) {
	bounds := []float64{}
	for b := 0.001; b < 1; b *= 1.1 {
		bounds = append(bounds, b)
	}
	bounds = append(bounds, math.Inf(1))
	hist := func(lat []float64) Histogram {
		h := Histogram{Bounds: bounds, Counts: make([]float64, len(bounds))}
		for _, l := range lat {
			for i, b := range bounds {
				if l <= b {
					h.Counts[i]++
				}
			}
		}
		return h
	}
	rng := rand.New(rand.NewPCG(1, 2))
	sample := func(n int, scale float64) []float64 {
		out := make([]float64, n)
		for i := range out {
			out[i] = scale * (0.01 + rng.ExpFloat64()*0.01)
		}
		return out
	}
	for _, tc := range []struct {
		name          string
		canary, base  []float64
		want          Verdict
		wantReasonHas string
	}{
		{"same", sample(5000, 1), sample(5000, 1), Pass, "from histograms"},
		{"three times slower", sample(5000, 3), sample(5000, 1), Fail, "lower bound"},
		{"too few", sample(100, 1), sample(5000, 1), Inconclusive, "need at least 368 samples"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := P99RatioHistogram(hist(tc.canary), hist(tc.base), 1.5, 0.95)
			want := P99Ratio(tc.canary, tc.base, 1.5, 0.95)
			if got.Verdict != tc.want || !strings.Contains(got.Reason, tc.wantReasonHas) || want.Verdict != tc.want {
				t.Errorf("histograms: %v (%s); samples: %v (%s); want %v", got.Verdict, got.Reason, want.Verdict, want.Reason, tc.want)
			}
			if !math.IsNaN(got.Value) && math.Abs(got.Value-want.Value) > 0.15*want.Value {
				t.Errorf("ratio %g from histograms, %g from samples", got.Value, want.Value)
			}
		})
	}
	h := Histogram{Bounds: []float64{1, 2, math.Inf(1)}, Counts: []float64{10, 20, 20}}
	for _, tc := range []struct{ k, want float64 }{{5, 0.5}, {10, 1}, {15, 1.5}, {20, 2}} {
		if got := h.at(tc.k); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("at(%g) = %g, want %g", tc.k, got, tc.want)
		}
	}
	if r := P99RatioHistogram(Histogram{Bounds: []float64{1, 2}, Counts: []float64{1, 2}}, h, 1.5, 0.95); !strings.Contains(r.Reason, "lacks its +Inf bucket") {
		t.Errorf("no +Inf bucket: %s", r.Reason)
	}
	if r := P99RatioHistogram(Histogram{Bounds: []float64{1, math.Inf(1)}, Counts: []float64{5, 2}}, h, 1.5, 0.95); !strings.Contains(r.Reason, "not cumulative") {
		t.Errorf("decreasing counts: %s", r.Reason)
	}
}

func TestAccuracyRatio(t *testing.T) {
	tests := []struct {
		name           string
		cc, cn, sc, sn int64
		minRatio       float64
		minFeedback    int64
		want           Verdict
		reason         string
	}{
		{"too few canary answers", 10, 10, 900, 1000, 0.95, 50, Inconclusive, "fewer than min_feedback 50"},
		{"too few stable answers", 900, 1000, 10, 10, 0.95, 50, Inconclusive, "fewer than min_feedback 50"},
		{"clearly worse", 600, 1000, 900, 1000, 0.95, 50, Fail, "upper bound"},
		{"as good, enough answers", 900, 1000, 900, 1000, 0.9, 50, Pass, "lower bound"},
		{"as good, too little data to pass 0.99", 90, 100, 90, 100, 0.99, 50, Inconclusive, "straddle"},
		{"better", 990, 1000, 800, 1000, 1, 50, Pass, "lower bound"},
		{"stable never right", 50, 100, 0, 100, 0.9, 50, Pass, "lower bound"},
		{"bad counts", 11, 10, 5, 10, 0.9, 1, Inconclusive, "more correct"},
		{"bad ratio", 1, 10, 5, 10, 0, 1, Inconclusive, "not positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := AccuracyRatio(tt.cc, tt.cn, tt.sc, tt.sn, tt.minRatio, tt.minFeedback, 0.95)
			if r.Verdict != tt.want || !strings.Contains(r.Reason, tt.reason) || r.Name != "accuracy_ratio" {
				t.Errorf("got %v %q, want %v containing %q", r.Verdict, r.Reason, tt.want, tt.reason)
			}
		})
	}
	// The measured ratio: 0.6/0.9.
	if r := AccuracyRatio(600, 1000, 900, 1000, 0.95, 50, 0.95); math.Abs(r.Value-2.0/3) > 1e-12 || !(r.Lower < r.Value && r.Value < r.Upper) {
		t.Errorf("value %v in [%v, %v]", r.Value, r.Lower, r.Upper)
	}
}
