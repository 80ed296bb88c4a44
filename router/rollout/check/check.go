package check

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// Verdict is a check's answer.
type Verdict int

// The verdicts. The zero value is Inconclusive, so that a Result that was
// never filled in holds the rollout rather than moving it.
const (
	// Inconclusive: the data cannot tell, with the confidence asked,
	// whether the canary is within its limit or beyond it.
	Inconclusive Verdict = iota
	// Pass: the canary is within its limit with the confidence asked.
	Pass
	// Fail: the canary is beyond its limit with the confidence asked.
	Fail
)

// String returns "inconclusive", "pass" or "fail", and "verdict(N)" for
// a value that is none of them.
func (v Verdict) String() string {
	switch v {
	case Inconclusive:
		return "inconclusive"
	case Pass:
		return "pass"
	case Fail:
		return "fail"
	}
	return "verdict(" + strconv.Itoa(int(v)) + ")"
}

// MarshalText writes the verdict as its string.
func (v Verdict) MarshalText() ([]byte, error) {
	return []byte(v.String()), nil
}

// UnmarshalText reads a verdict written by MarshalText, so that a
// rollout's history round-trips through its document.
func (v *Verdict) UnmarshalText(b []byte) error {
	for _, c := range []Verdict{Inconclusive, Pass, Fail} {
		if string(b) == c.String() {
			*v = c
			return nil
		}
	}
	return fmt.Errorf("unknown verdict %q (want inconclusive, pass or fail)", b)
}

// Result is one check's outcome with the figures behind it.
type Result struct {
	// Name is the check's name: "error_rate", "p99_ratio" or "drift".
	Name string
	// Verdict is the check's answer.
	Verdict Verdict
	// Value is the figure checked, as measured: the error share, the ratio
	// of the sample p99s, or the PSI. NaN where it cannot be computed.
	Value float64
	// Limit is the caller's limit for Value.
	Limit float64
	// Lower and Upper bound Value's true figure, each one-sided at the
	// confidence asked; NaN where the check has no bounds or could not
	// compute them.
	Lower, Upper float64
	// Samples is how much data the verdict rests on: the requests, the
	// smaller of the two latency samples, or the drift samples.
	Samples int64
	// Reason says why, for people.
	Reason string
}

// MarshalJSON writes the result with lower-case snake keys, the verdict
// as its string and non-finite numbers (NaN, ±Inf) as null, which JSON
// cannot otherwise hold.
func (r Result) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Name    string   `json:"name"`
		Verdict Verdict  `json:"verdict"`
		Value   *float64 `json:"value"`
		Limit   *float64 `json:"limit"`
		Lower   *float64 `json:"lower"`
		Upper   *float64 `json:"upper"`
		Samples int64    `json:"samples"`
		Reason  string   `json:"reason"`
	}{
		Name:    r.Name,
		Verdict: r.Verdict,
		Value:   finite(r.Value),
		Limit:   finite(r.Limit),
		Lower:   finite(r.Lower),
		Upper:   finite(r.Upper),
		Samples: r.Samples,
		Reason:  r.Reason,
	})
}

// finite returns a pointer to x, or nil when x is NaN or infinite.
func finite(x float64) *float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil
	}
	return &x
}

// checkConfidence returns a reason when confidence is not in [0.5, 1),
// the range in which a lower bound never exceeds its upper bound, and ""
// when it is.
func checkConfidence(confidence float64) string {
	if !(confidence >= 0.5 && confidence < 1) {
		return fmt.Sprintf("confidence %g not in [0.5, 1)", confidence)
	}
	return ""
}

// percent formats a confidence as a percentage: 0.95 as "95%".
func percent(confidence float64) string {
	return strconv.FormatFloat(confidence*100, 'g', 4, 64) + "%"
}
