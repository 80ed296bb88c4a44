package router_test

import (
	"testing"

	"github.com/infergate/infergate/router"
)

// FuzzParseDocument: no document, valid or not, in JSON or YAML, panics
// the parser or passes validation with a rollout whose interval would
// panic a ticker.
func FuzzParseDocument(f *testing.F) {
	for _, seed := range []string{
		`{"split": [{"label": "stable", "weight": 90}, {"version": 4, "weight": 10}], "sticky": {"header": "x-user-id", "salt": "exp-42"}}`,
		`{"rollout": {"stable": {"label": "stable"}, "canary": {"version": 4}, "steps": [5, 10, 25, 50, 100], "interval_seconds": 60}}`,
		`{"shadow": {"version": 5, "percent": 10}, "fallback": {"label": "stable"}, "breaker": {"consecutive_failures": 5}}`,
		`{"rollout": {"stable": {"version": 1}, "canary": {"version": 2}, "interval_seconds": 1e-300}}`,
		"split:\n  - {version: 1, weight: .nan}\n",
		`{}`, `[]`, `{"split": null}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, parse := range []func([]byte) (*router.Document, error){router.ParseJSON, router.ParseYAML} {
			d, err := parse(b)
			if err != nil || d.Rollout == nil {
				continue
			}
			if s := d.Rollout.IntervalSeconds; s != 0 && !(s >= 0.01 && s <= 86400) {
				t.Fatalf("interval_seconds %v validated", s)
			}
		}
	})
}
