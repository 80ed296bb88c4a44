package check

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"gonum.org/v1/gonum/stat/distuv"
)

// p99 is the quantile that P99Ratio bounds.
const p99 = 0.99

// P99Ratio checks the canary's p99 latency against maxRatio (> 0, e.g.
// 1.5) times the stable version's, at confidence (in [0.5, 1), e.g.
// 0.95), from two samples of latencies in seconds, in any order: it sorts
// copies and leaves the slices as they are. Each p99 is bounded by
// order statistics at the one-sided level 1 − (1−confidence)/2, so that
// each bound of the ratio holds at confidence (Bonferroni). It fails when
// lower(canary p99) / upper(stable p99) > maxRatio and passes when
// upper(canary p99) / lower(stable p99) ≤ maxRatio.
//
// Each sample needs at least MinP99Samples(confidence) latencies, 368 at
// confidence 0.95; with fewer the result is inconclusive with reason
// "need at least 368 samples". It is inconclusive too when a latency is
// NaN, infinite or negative, or maxRatio or confidence is out of range.
// Value is the ratio of the two samples' nearest-rank p99s, Samples the
// size of the smaller sample. In the ratios, 0/0 counts as 0 and x/0 as
// +Inf for x > 0.
func P99Ratio(canary, stable []float64, maxRatio, confidence float64) Result {
	r := Result{Name: "p99_ratio", Value: math.NaN(), Limit: maxRatio,
		Lower: math.NaN(), Upper: math.NaN(), Samples: int64(min(len(canary), len(stable)))}
	switch {
	case !(maxRatio > 0) || math.IsInf(maxRatio, 1):
		r.Reason = fmt.Sprintf("max ratio %g is not a positive number", maxRatio)
	case checkConfidence(confidence) != "":
		r.Reason = checkConfidence(confidence)
	default:
		r.Reason = checkLatencies("canary", canary) + checkLatencies("stable", stable)
	}
	if r.Reason != "" {
		return r
	}
	c, s := slices.Clone(canary), slices.Clone(stable)
	slices.Sort(c)
	slices.Sort(s)
	if len(c) > 0 && len(s) > 0 {
		r.Value = ratio(nearestRank(c, p99), nearestRank(s, p99))
	}
	need := MinP99Samples(confidence)
	if len(c) < need || len(s) < need {
		r.Reason = fmt.Sprintf("need at least %d samples (canary %d, stable %d)", need, len(c), len(s))
		return r
	}
	level := 1 - (1-confidence)/2
	cl, cu, cok := quantileBounds(c, p99, level)
	sl, su, sok := quantileBounds(s, p99, level)
	if !cok || !sok {
		// Only where rounding puts MinP99Samples and the binomial CDF on
		// either side of the level.
		r.Reason = fmt.Sprintf("need at least %d samples", need+1)
		return r
	}
	r.judge(cl, cu, sl, su, confidence, "")
	return r
}

// judge sets a p99 ratio's bounds from the canary's and stable's p99
// bounds, and its verdict; from names where the bounds come from.
func (r *Result) judge(cl, cu, sl, su, confidence float64, from string) {
	r.Lower, r.Upper = ratio(cl, su), ratio(cu, sl)
	switch {
	case r.Lower > r.Limit:
		r.Verdict = Fail
		r.Reason = fmt.Sprintf("p99 ratio lower bound %.4g > %g at %s (canary p99 ≥ %.4gs, stable p99 ≤ %.4gs%s)",
			r.Lower, r.Limit, percent(confidence), cl, su, from)
	case r.Upper <= r.Limit:
		r.Verdict = Pass
		r.Reason = fmt.Sprintf("p99 ratio upper bound %.4g ≤ %g at %s (canary p99 ≤ %.4gs, stable p99 ≥ %.4gs%s)",
			r.Upper, r.Limit, percent(confidence), cu, sl, from)
	default:
		r.Reason = fmt.Sprintf("p99 ratio bounds [%.4g, %.4g] straddle %g at %s%s",
			r.Lower, r.Upper, r.Limit, percent(confidence), strings.TrimPrefix(from, ","))
	}
}

// MinP99Samples returns the smallest sample size for which P99Ratio can
// bound a p99 at confidence: the smallest n with both order-statistic
// bounds of the 0.99 quantile at the one-sided level γ = 1 − (1−c)/2,
// that is 0.99^n ≤ 1−γ (the largest latency is an upper bound) and
// 0.01^n ≤ 1−γ (the smallest is a lower bound). It is 368 at confidence
// 0.95 (ln 0.025 / ln 0.99 = 367.04), 299 at 0.90 and 528 at 0.99; 0 when
// confidence is not in [0.5, 1).
func MinP99Samples(confidence float64) int {
	if checkConfidence(confidence) != "" {
		return 0
	}
	alpha := (1 - confidence) / 2
	n := 1
	for _, q := range []float64{p99, 1 - p99} {
		m := max(1, int(math.Ceil(math.Log(alpha)/math.Log(q))))
		// Step over the rounding of the logarithms, either way.
		for m > 1 && math.Pow(q, float64(m-1)) <= alpha {
			m--
		}
		for math.Pow(q, float64(m)) > alpha {
			m++
		}
		n = max(n, m)
	}
	return n
}

// quantileBounds returns the one-sided order-statistic bounds of the
// q-quantile from the sorted sample x, each at level: the lower bound is
// x(k) for the largest k with P(Binomial(n, q) ≥ k) ≥ level, the upper
// bound x(k) for the smallest k with P(Binomial(n, q) ≤ k−1) ≥ level
// (x(k) is the k-th smallest, from 1). ok is false when either bound does
// not exist at that n.
func quantileBounds(x []float64, q, level float64) (lower, upper float64, ok bool) {
	lo, up, ok := quantileRanks(len(x), q, level)
	if !ok {
		return 0, 0, false
	}
	return x[lo-1], x[up-1], true
}

// quantileRanks returns the ranks (from 1) of quantileBounds' order
// statistics in a sample of n, and whether both exist.
func quantileRanks(n int, q, level float64) (lower, upper int, ok bool) {
	if n < 1 {
		return 0, 0, false
	}
	b := distuv.Binomial{N: float64(n), P: q}
	// CDF(i) = P(Binomial ≤ i) grows with i, so each rank is a search
	// over i = k−1 in [0, n).
	//
	// Upper: the smallest k with CDF(k−1) ≥ level.
	i := sort.Search(n, func(i int) bool { return b.CDF(float64(i)) >= level })
	if i == n {
		return 0, 0, false
	}
	upper = i + 1
	// Lower: the largest k with 1 − CDF(k−1) ≥ level, that is
	// CDF(k−1) ≤ 1 − level; the i that satisfy it are a prefix [0, j).
	j := sort.Search(n, func(i int) bool { return b.CDF(float64(i)) > 1-level })
	if j == 0 {
		return 0, 0, false
	}
	return j, upper, true
}

// nearestRank returns the nearest-rank q-quantile of the sorted non-empty
// sample x: x(⌈q·n⌉).
func nearestRank(x []float64, q float64) float64 {
	k := int(math.Ceil(q * float64(len(x))))
	return x[min(max(k, 1), len(x))-1]
}

// ratio returns a/b for latencies a, b ≥ 0, with 0/0 = 0 (a canary that
// takes no time is not slower) and a/0 = +Inf for a > 0.
func ratio(a, b float64) float64 {
	switch {
	case a == 0:
		return 0
	case b == 0:
		return math.Inf(1)
	}
	return a / b
}

// checkLatencies returns a reason naming the first latency of sample
// that is NaN, infinite or negative, and "" when there is none.
func checkLatencies(sample string, latencies []float64) string {
	for i, v := range latencies {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return fmt.Sprintf("%s latency %d is %g", sample, i, v)
		}
	}
	return ""
}

// Histogram is a latency histogram as Prometheus keeps it: the upper
// bounds of its buckets in increasing order, the last +Inf, and the
// cumulative count of each (the observations ≤ its bound).
type Histogram struct {
	Bounds []float64
	Counts []float64
}

// Total returns the histogram's observation count, rounded: Prometheus'
// increase() extrapolates, so counts need not be whole.
func (h Histogram) Total() int {
	if len(h.Counts) == 0 {
		return 0
	}
	return int(math.Round(h.Counts[len(h.Counts)-1]))
}

// valid reports why h cannot be read, or "".
func (h Histogram) valid(name string) string {
	switch {
	case len(h.Bounds) != len(h.Counts):
		return fmt.Sprintf("%s histogram has %d bounds and %d counts", name, len(h.Bounds), len(h.Counts))
	case len(h.Bounds) > 0 && !math.IsInf(h.Bounds[len(h.Bounds)-1], 1):
		return fmt.Sprintf("%s histogram lacks its +Inf bucket", name)
	}
	for i := range h.Bounds {
		if math.IsNaN(h.Counts[i]) || h.Counts[i] < 0 || (i > 0 && (h.Bounds[i] <= h.Bounds[i-1] || h.Counts[i] < h.Counts[i-1]-1e-9)) {
			return fmt.Sprintf("%s histogram is not cumulative over increasing bounds at bucket %d", name, i)
		}
	}
	return ""
}

// at returns the value of rank k (from 1) of h's observations,
// interpolated linearly within its bucket, as PromQL's
// histogram_quantile does; a rank in the +Inf bucket gets the highest
// finite bound.
func (h Histogram) at(k float64) float64 {
	lower, below := 0.0, 0.0
	for i, ub := range h.Bounds {
		c := h.Counts[i]
		if c >= k {
			if math.IsInf(ub, 1) {
				return lower
			}
			if c == below {
				return ub
			}
			return lower + (ub-lower)*(k-below)/(c-below)
		}
		lower, below = ub, c
	}
	return lower
}

// P99RatioHistogram is P99Ratio for histograms instead of samples (the
// figures of every replica that Prometheus aggregates): each p99's
// bounds are the same order statistics, read from the histogram by
// interpolation within buckets. Value is the ratio of the
// histogram_quantile p99s. The bucket layout limits what it can tell:
// ranks that fall in the same wide bucket interpolate to close values,
// as PromQL assumes.
func P99RatioHistogram(canary, stable Histogram, maxRatio, confidence float64) Result {
	r := Result{Name: "p99_ratio", Value: math.NaN(), Limit: maxRatio,
		Lower: math.NaN(), Upper: math.NaN(), Samples: int64(min(canary.Total(), stable.Total()))}
	switch {
	case !(maxRatio > 0) || math.IsInf(maxRatio, 1):
		r.Reason = fmt.Sprintf("max ratio %g is not a positive number", maxRatio)
	case checkConfidence(confidence) != "":
		r.Reason = checkConfidence(confidence)
	default:
		r.Reason = canary.valid("canary") + stable.valid("stable")
	}
	if r.Reason != "" {
		return r
	}
	cn, sn := canary.Total(), stable.Total()
	if cn > 0 && sn > 0 {
		r.Value = ratio(canary.at(math.Ceil(p99*float64(cn))), stable.at(math.Ceil(p99*float64(sn))))
	}
	need := MinP99Samples(confidence)
	if cn < need || sn < need {
		r.Reason = fmt.Sprintf("need at least %d samples (canary %d, stable %d)", need, cn, sn)
		return r
	}
	level := 1 - (1-confidence)/2
	clo, cup, cok := quantileRanks(cn, p99, level)
	slo, sup, sok := quantileRanks(sn, p99, level)
	if !cok || !sok {
		r.Reason = fmt.Sprintf("need at least %d samples", need+1)
		return r
	}
	cl, cu := canary.at(float64(clo)), canary.at(float64(cup))
	sl, su := stable.at(float64(slo)), stable.at(float64(sup))
	r.judge(cl, cu, sl, su, confidence, ", from histograms")
	return r
}
