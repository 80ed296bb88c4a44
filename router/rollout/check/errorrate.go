package check

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// ErrorRate checks the canary's error share, errors of requests, against
// maxRate (in [0, 1], e.g. 0.01) at confidence (in [0.5, 1), e.g. 0.95).
// Its bounds are the one-sided Clopper–Pearson (exact binomial) bounds of
// the error probability, each at confidence: it fails when the lower
// bound > maxRate, passes when the upper bound ≤ maxRate, and is
// inconclusive otherwise, when requests is 0, or when an input is out of
// range (negative counts, errors > requests, NaN). Value is
// errors/requests.
func ErrorRate(errors, requests int64, maxRate, confidence float64) Result {
	r := Result{Name: "error_rate", Value: math.NaN(), Limit: maxRate,
		Lower: math.NaN(), Upper: math.NaN(), Samples: requests}
	switch {
	case errors < 0:
		r.Reason = fmt.Sprintf("errors %d is negative", errors)
	case requests < 0:
		r.Reason = fmt.Sprintf("requests %d is negative", requests)
	case errors > requests:
		r.Reason = fmt.Sprintf("errors %d > requests %d", errors, requests)
	case !(maxRate >= 0 && maxRate <= 1):
		r.Reason = fmt.Sprintf("max rate %g not in [0, 1]", maxRate)
	default:
		r.Reason = checkConfidence(confidence)
	}
	if r.Reason != "" {
		return r
	}
	r.Lower, r.Upper = clopperPearson(errors, requests, confidence)
	if requests == 0 {
		r.Reason = "no requests"
		return r
	}
	r.Value = float64(errors) / float64(requests)
	switch {
	case r.Lower > maxRate:
		r.Verdict = Fail
		r.Reason = fmt.Sprintf("%d errors of %d requests: lower bound %.4g > %g at %s",
			errors, requests, r.Lower, maxRate, percent(confidence))
	case r.Upper <= maxRate:
		r.Verdict = Pass
		r.Reason = fmt.Sprintf("%d errors of %d requests: upper bound %.4g ≤ %g at %s",
			errors, requests, r.Upper, maxRate, percent(confidence))
	default:
		r.Reason = fmt.Sprintf("%d errors of %d requests: bounds [%.4g, %.4g] straddle %g at %s",
			errors, requests, r.Lower, r.Upper, maxRate, percent(confidence))
	}
	return r
}

// clopperPearson returns the one-sided Clopper–Pearson lower and upper
// bounds, each at confidence, of a binomial probability from x successes
// in n trials (0 ≤ x ≤ n; n = 0 gives [0, 1]).
func clopperPearson(x, n int64, confidence float64) (lower, upper float64) {
	lower, upper = 0, 1
	fx, fn := float64(x), float64(n)
	if x > 0 {
		lower = distuv.Beta{Alpha: fx, Beta: fn - fx + 1}.Quantile(1 - confidence)
	}
	if x < n {
		upper = distuv.Beta{Alpha: fx + 1, Beta: fn - fx}.Quantile(confidence)
	}
	return lower, upper
}
