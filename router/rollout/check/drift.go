package check

import (
	"fmt"
	"math"
)

// MinDriftSamples is the fewest samples with which Drift passes: the
// monitoring package's drift.MinSamples, below which it does not test an
// element at all.
const MinDriftSamples = 50

// Drift checks the canary's prediction drift against the stable version
// from the monitoring package's comparison of their live windows: psi,
// the worst element's PSI (≥ 0, +Inf allowed), pValue, that element's
// corrected p-value of the chi-square homogeneity test (in [0, 1]; small
// means different), and samples, the smaller window's count behind them.
// It fails when psi > maxPSI (≥ 0, e.g. 0.2) and pValue < 1 − confidence
// (in [0.5, 1), e.g. 0.95); it passes when psi ≤ maxPSI and samples ≥
// MinDriftSamples; otherwise, or when an input is out of range, it is
// inconclusive. Value is psi; Lower and Upper are NaN, PSI being a point
// figure.
func Drift(psi, pValue float64, samples int64, maxPSI, confidence float64) Result {
	r := Result{Name: "drift", Value: psi, Limit: maxPSI,
		Lower: math.NaN(), Upper: math.NaN(), Samples: samples}
	alpha := 1 - confidence
	switch {
	case !(psi >= 0):
		r.Reason = fmt.Sprintf("psi %g is not a number ≥ 0", psi)
	case !(pValue >= 0 && pValue <= 1):
		r.Reason = fmt.Sprintf("p-value %g not in [0, 1]", pValue)
	case samples < 0:
		r.Reason = fmt.Sprintf("samples %d is negative", samples)
	case !(maxPSI >= 0) || math.IsInf(maxPSI, 1):
		r.Reason = fmt.Sprintf("max psi %g is not a finite number ≥ 0", maxPSI)
	case checkConfidence(confidence) != "":
		r.Reason = checkConfidence(confidence)
	case psi > maxPSI && pValue < alpha:
		r.Verdict = Fail
		r.Reason = fmt.Sprintf("psi %.4g > %g and p-value %.4g < %.4g", psi, maxPSI, pValue, alpha)
	case psi > maxPSI:
		r.Reason = fmt.Sprintf("psi %.4g > %g but p-value %.4g ≥ %.4g: not significant", psi, maxPSI, pValue, alpha)
	case samples < MinDriftSamples:
		r.Reason = fmt.Sprintf("psi %.4g ≤ %g but only %d samples, need at least %d", psi, maxPSI, samples, MinDriftSamples)
	default:
		r.Verdict = Pass
		r.Reason = fmt.Sprintf("psi %.4g ≤ %g with %d samples", psi, maxPSI, samples)
	}
	return r
}
