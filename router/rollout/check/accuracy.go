package check

import (
	"fmt"
	"math"
)

// AccuracyRatio checks the canary's feedback accuracy against stable's:
// canaryCorrect of canaryLabelled answers against stableCorrect of
// stableLabelled, with minRatio (in (0, ∞), e.g. 0.95) the least ratio
// of the canary's accuracy to stable's, at confidence (in [0.5, 1)).
//
// Each accuracy gets its one-sided Clopper–Pearson bounds at (1+c)/2, so
// that the two bounds of a verdict hold together with probability at
// least c (Bonferroni). It fails when the canary's upper bound divided
// by stable's lower bound is below minRatio (the canary is worse with
// confidence c), passes when the canary's lower bound divided by
// stable's upper bound is at least minRatio, and is inconclusive
// otherwise, when either version has fewer than minFeedback answers
// (the rollout holds until both have enough), or when an input is out
// of range. Value is the ratio of the two measured accuracies, Samples
// the smaller count of answers.
func AccuracyRatio(canaryCorrect, canaryLabelled, stableCorrect, stableLabelled int64, minRatio float64, minFeedback int64, confidence float64) Result {
	r := Result{Name: "accuracy_ratio", Value: math.NaN(), Limit: minRatio,
		Lower: math.NaN(), Upper: math.NaN(), Samples: min(canaryLabelled, stableLabelled)}
	switch {
	case canaryCorrect < 0 || stableCorrect < 0 || canaryLabelled < 0 || stableLabelled < 0:
		r.Reason = "negative counts"
	case canaryCorrect > canaryLabelled || stableCorrect > stableLabelled:
		r.Reason = "more correct answers than answers"
	case !(minRatio > 0) || math.IsInf(minRatio, 0):
		r.Reason = fmt.Sprintf("min ratio %g is not positive", minRatio)
	default:
		r.Reason = checkConfidence(confidence)
	}
	if r.Reason != "" {
		return r
	}
	if canaryLabelled > 0 && stableLabelled > 0 && stableCorrect > 0 {
		r.Value = (float64(canaryCorrect) / float64(canaryLabelled)) / (float64(stableCorrect) / float64(stableLabelled))
	}
	if canaryLabelled < minFeedback || stableLabelled < minFeedback {
		r.Reason = fmt.Sprintf("canary %d, stable %d feedback answers: fewer than min_feedback %d", canaryLabelled, stableLabelled, minFeedback)
		return r
	}
	each := (1 + confidence) / 2
	cl, cu := clopperPearson(canaryCorrect, canaryLabelled, each)
	sl, su := clopperPearson(stableCorrect, stableLabelled, each)
	r.Lower = cl / su
	r.Upper = math.Inf(1)
	if sl > 0 {
		r.Upper = cu / sl
	}
	acc := fmt.Sprintf("accuracy %d/%d against stable's %d/%d", canaryCorrect, canaryLabelled, stableCorrect, stableLabelled)
	switch {
	case r.Upper < minRatio:
		r.Verdict = Fail
		r.Reason = fmt.Sprintf("%s: ratio upper bound %.4g < %g at %s", acc, r.Upper, minRatio, percent(confidence))
	case r.Lower >= minRatio:
		r.Verdict = Pass
		r.Reason = fmt.Sprintf("%s: ratio lower bound %.4g ≥ %g at %s", acc, r.Lower, minRatio, percent(confidence))
	default:
		r.Reason = fmt.Sprintf("%s: ratio bounds [%.4g, %.4g] straddle %g at %s", acc, r.Lower, r.Upper, minRatio, percent(confidence))
	}
	return r
}
