package drift

import (
	"math"

	"gonum.org/v1/gonum/mathext"
)

// scores are the statistics of one element: window counts against
// reference counts in the same bins. p is the uncorrected p-value.
type scores struct {
	psi, ks, js, p float64
}

// compareCounts computes the statistics of the window counts q against the
// reference counts p, bin by bin (len(q) == len(p)). With an empty side
// there is nothing to compare: the scores are 0 and p is 1.
func compareCounts(p, q []float64) scores {
	np, nq := sum(p), sum(q)
	if np <= 0 || nq <= 0 {
		return scores{p: 1}
	}
	stat, df := chiSquare(p, q, np, nq)
	return scores{
		psi: psi(p, q, np, nq),
		ks:  ks(p, q, np, nq),
		js:  js(p, q, np, nq),
		p:   chiSquarePValue(stat, df),
	}
}

func sum(c []float64) float64 {
	var s float64
	for _, v := range c {
		s += v
	}
	return s
}

// psi is the population stability index Σ (q−p)·ln(q/p) of the proportions
// p = p[i]/np and q = q[i]/nq, each floored at Epsilon (everywhere in the
// formula) so that an empty bin costs a large but finite amount.
func psi(p, q []float64, np, nq float64) float64 {
	var s float64
	for i := range p {
		a := max(p[i]/np, Epsilon)
		b := max(q[i]/nq, Epsilon)
		s += (b - a) * math.Log(b/a)
	}
	return s
}

// ks is the binned Kolmogorov–Smirnov statistic: the largest difference of
// the two cumulative proportions at a bin boundary. It is a lower bound of
// the statistic of the raw values, which may differ more inside a bin.
func ks(p, q []float64, np, nq float64) float64 {
	var cp, cq, d float64
	for i := 0; i < len(p)-1; i++ {
		cp += p[i]
		cq += q[i]
		d = max(d, math.Abs(cq/nq-cp/np))
	}
	return d
}

// js is the Jensen–Shannon distance: the square root of the Jensen–Shannon
// divergence with base-2 logarithms, in [0, 1].
func js(p, q []float64, np, nq float64) float64 {
	var d float64
	for i := range p {
		a, b := p[i]/np, q[i]/nq
		m := (a + b) / 2
		if a > 0 {
			d += a * math.Log2(a/m)
		}
		if b > 0 {
			d += b * math.Log2(b/m)
		}
	}
	return math.Sqrt(min(max(d/2, 0), 1))
}

// minExpected is the smallest expected count a pooled column of the
// chi-square test may have in its smaller row.
const minExpected = 5

// chiSquare is Pearson's statistic of the test of homogeneity of the 2×K
// table whose rows are p and q, and its degrees of freedom, after pooling
// adjacent columns left to right until each pooled column's smaller
// expected count, its total × min(np, nq)/(np+nq), is at least
// minExpected. A last group that falls short merges into the one before
// it. A table that pools into one column has df 0.
func chiSquare(p, q []float64, np, nq float64) (stat float64, df int) {
	n := np + nq
	share := min(np, nq) / n
	cell := func(gp, gq float64) float64 {
		t := gp + gq
		ep, eq := t*np/n, t*nq/n
		return (gp-ep)*(gp-ep)/ep + (gq-eq)*(gq-eq)/eq
	}
	// The last closed group is held back (pending) until another closes,
	// so that a short leftover can still merge into it.
	var gp, gq, pp, pq float64
	groups := 0
	for i := range p {
		gp += p[i]
		gq += q[i]
		if (gp+gq)*share >= minExpected {
			if groups > 0 {
				stat += cell(pp, pq)
			}
			pp, pq = gp, gq
			gp, gq = 0, 0
			groups++
		}
	}
	if groups == 0 {
		return 0, 0
	}
	stat += cell(pp+gp, pq+gq)
	return stat, groups - 1
}

// chiSquarePValue is the upper tail probability of the chi-square
// distribution with df degrees of freedom at stat; 1 when df < 1.
func chiSquarePValue(stat float64, df int) float64 {
	if df < 1 || stat <= 0 {
		return 1
	}
	return mathext.GammaIncRegComp(float64(df)/2, stat/2)
}

// evaluation gathers the per-element comparisons of one tensor before the
// decision.
type evaluation struct {
	elements []ElementResult
	raw      []scores
	tested   []bool
}

func newEvaluation(elements int) *evaluation {
	return &evaluation{
		elements: make([]ElementResult, elements),
		raw:      make([]scores, elements),
		tested:   make([]bool, elements),
	}
}

// compare records element i: window counts q against reference counts p.
// The element is tested when its window holds at least MinSamples values
// and its reference at least minRef (and at least one).
func (ev *evaluation) compare(i int, p, q []float64, minRef float64) {
	nq := sum(q)
	ev.elements[i] = ElementResult{Index: i, Samples: int64(math.Round(nq)), PValue: 1}
	if nq < MinSamples || sum(p) < max(minRef, 1) {
		return
	}
	ev.raw[i] = compareCounts(p, q)
	ev.tested[i] = true
}

// result applies the decision of the package doc: Bonferroni over the
// tested elements, then the p-value and effect-size thresholds.
func (ev *evaluation) result(samples, referenceSamples int64) Result {
	r := Result{Samples: samples, ReferenceSamples: referenceSamples, PValue: 1, Elements: ev.elements}
	for _, t := range ev.tested {
		if t {
			r.Tested++
		}
	}
	m := float64(r.Tested)
	for i := range ev.elements {
		if !ev.tested[i] {
			continue
		}
		s := ev.raw[i]
		e := &ev.elements[i]
		e.PSI, e.KS, e.JS = s.psi, s.ks, s.js
		e.PValue = min(1, m*s.p)
		e.Detected = e.PValue < Alpha && e.PSI >= MinPSI
		r.PSI = max(r.PSI, e.PSI)
		r.KS = max(r.KS, e.KS)
		r.JS = max(r.JS, e.JS)
		r.PValue = min(r.PValue, e.PValue)
		r.Detected = r.Detected || e.Detected
	}
	return r
}
