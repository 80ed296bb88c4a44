package router

import (
	"strings"
	"testing"
	"time"
)

// TestRolloutStart: a PUT stamps started_at, keeps the running
// rollout's when it sends the same rollout again, and a rollout with
// prometheus_url refuses pause and resume; started_at compares as an
// instant.
func TestRolloutStart(t *testing.T) {
	a := Rollout{Stable: Target{Version: 1}, Canary: Target{Version: 2}}
	b := a
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	t1 := t0.In(time.FixedZone("x", 3600))
	a.StartedAt, b.StartedAt = &t0, &t1
	if !sameRollout(a, b) {
		t.Error("one instant in two zones is not the same rollout")
	}
	b.Steps = []float64{50, 100}
	if sameRollout(a, b) {
		t.Error("other steps are the same rollout")
	}
	if d := withRolloutDefaults(Rollout{PrometheusURL: "http://p:9090"}); d.ScrapeLagSeconds != 30 {
		t.Errorf("scrape_lag_seconds defaults to %v, want 30", d.ScrapeLagSeconds)
	}
	doc := &Document{Rollout: &Rollout{Stable: Target{Version: 1}, Canary: Target{Version: 2}}}
	stamped := stampStart(doc, nil)
	if doc.Rollout.StartedAt != nil || stamped.Rollout.StartedAt == nil || time.Since(*stamped.Rollout.StartedAt) > time.Minute {
		t.Fatalf("stamp: caller's %v, stamped %v", doc.Rollout.StartedAt, stamped.Rollout.StartedAt)
	}
	running := &rollout{spec0: *stamped.Rollout, start: t0, done: make(chan struct{})}
	if again := stampStart(doc, running); !again.Rollout.StartedAt.Equal(t0) {
		t.Errorf("the same rollout again: started_at %v, want the running one's %v", again.Rollout.StartedAt, t0)
	}
	other := &Document{Rollout: &Rollout{Stable: Target{Version: 1}, Canary: Target{Version: 3}}}
	if s := stampStart(other, running); s.Rollout.StartedAt.Equal(t0) {
		t.Error("another rollout took the running one's start")
	}
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"selector without URL", `{"rollout": {"stable": {"version": 1}, "canary": {"version": 2}, "prometheus_selector": "job=\"x\""}}`, "rollout.prometheus_selector: needs prometheus_url"},
		{"bad selector", `{"rollout": {"stable": {"version": 1}, "canary": {"version": 2}, "prometheus_url": "http://p:9090", "prometheus_selector": "job=x"}}`, "rollout.prometheus_selector: must be label matchers"},
		{"bad URL", `{"rollout": {"stable": {"version": 1}, "canary": {"version": 2}, "prometheus_url": "p:9090"}}`, "rollout.prometheus_url: must be an http or https URL"},
		{"negative lag", `{"rollout": {"stable": {"version": 1}, "canary": {"version": 2}, "prometheus_url": "http://p:9090", "scrape_lag_seconds": -1}}`, "rollout.scrape_lag_seconds: must be in [0, 3600]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseJSON([]byte(tc.doc)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := ParseJSON([]byte(`{"rollout": {"stable": {"version": 1}, "canary": {"version": 2}, "prometheus_url": "http://p:9090",
		"prometheus_selector": "job=\"infergate\", namespace=~\"ml|ml-\\\\d\"", "started_at": "2026-12-02T10:00:00Z"}}`)); err != nil {
		t.Errorf("a good document: %v", err)
	}
}
