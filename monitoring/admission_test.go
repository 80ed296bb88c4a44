package monitoring

import (
	"testing"
	"time"
)

// TestWatchAdmission: the three gauges come from one read at each scrape,
// and none is exported while the gateway has no limit.
func TestWatchAdmission(t *testing.T) {
	m := New(Options{})
	state := struct {
		limit, inflight int
		minRTT          time.Duration
		ok              bool
	}{}
	reads := 0
	m.WatchAdmission(func() (int, int, time.Duration, bool) {
		reads++
		return state.limit, state.inflight, state.minRTT, state.ok
	})
	gauges := func() map[string]float64 {
		t.Helper()
		fams, err := m.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, f := range fams {
			switch name := f.GetName(); name {
			case "infergate_admission_limit", "infergate_admission_inflight_requests", "infergate_admission_min_rtt_seconds":
				out[name] = f.GetMetric()[0].GetGauge().GetValue()
			}
		}
		return out
	}
	tests := []struct {
		name     string
		limit    int
		inflight int
		minRTT   time.Duration
		ok       bool
		want     map[string]float64
	}{
		{"no limit", 0, 0, 0, false, map[string]float64{}},
		{"fixed", 128, 7, 0, true, map[string]float64{"infergate_admission_limit": 128, "infergate_admission_inflight_requests": 7, "infergate_admission_min_rtt_seconds": 0}},
		{"adaptive", 41, 40, 1500 * time.Microsecond, true, map[string]float64{"infergate_admission_limit": 41, "infergate_admission_inflight_requests": 40, "infergate_admission_min_rtt_seconds": 0.0015}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state.limit, state.inflight, state.minRTT, state.ok = tt.limit, tt.inflight, tt.minRTT, tt.ok
			before := reads
			got := gauges()
			if reads != before+1 {
				t.Errorf("%d reads for a scrape, want 1", reads-before)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v", k, got[k], v)
				}
			}
		})
	}
}
