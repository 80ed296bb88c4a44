package router

import (
	"strings"
	"testing"
	"time"

	"github.com/infergate/infergate/router/rollout/check"
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

// counts is a FeedbackCounter of fixed figures.
type counts map[int64][2]int64

func (c counts) Counts(_ string, v int64) (int64, int64) { return c[v][0], c[v][1] }

// TestLocalAccuracy: each interval's feedback check counts the feedback
// given since the last one, and counts again from now when the versions
// change.
func TestLocalAccuracy(t *testing.T) {
	c := counts{2: {0, 0}, 1: {0, 0}}
	ro := &rollout{r: &Router{opts: Options{Feedback: c}}, model: "m",
		spec: withRolloutDefaults(Rollout{MinAccuracyRatio: 0.9, MinFeedback: 100}), feedbackOf: [2]int64{2, 1}}
	step := func(canary, stable [2]int64) (int64, check.Verdict) {
		c[2], c[1] = canary, stable
		r := ro.localAccuracy(2, 1)
		return r.Samples, r.Verdict
	}
	// Interval 1: 1000 right answers each: pass.
	if n, v := step([2]int64{1000, 1000}, [2]int64{1000, 1000}); n != 1000 || v != check.Pass {
		t.Errorf("interval 1: %d samples, %v", n, v)
	}
	// Interval 2: 50 more each: fewer than min_feedback in the interval.
	if n, v := step([2]int64{1050, 1050}, [2]int64{1050, 1050}); n != 50 || v != check.Inconclusive {
		t.Errorf("interval 2: %d samples, %v; want the interval's 50, inconclusive", n, v)
	}
	// Interval 3: 500 more each, the canary's all wrong: fail, whatever
	// the first interval's good answers.
	if n, v := step([2]int64{1550, 1050}, [2]int64{1550, 1550}); n != 500 || v != check.Fail {
		t.Errorf("interval 3: %d samples, %v; want 500, fail", n, v)
	}
	// Other versions: this interval counts from now.
	c[3] = [2]int64{5000, 5000}
	if r := ro.localAccuracy(3, 1); r.Samples != 0 || r.Verdict != check.Inconclusive {
		t.Errorf("new versions: %+v", r)
	}
}
