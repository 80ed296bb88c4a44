package main

import (
	"context"
	"math"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infergate/infergate/runtime/runtimetest"
)

// TestOverloadShedding: past http.admission_limit, inference requests
// get 503 with Retry-After and a KServe error before they are decoded;
// the admitted ones succeed, nothing else fails, and the server serves
// afterwards. 16 clients on the slow model (milliseconds a request)
// against a limit of 2 keep more than 2 in flight. (The figures at twice
// capacity come from make overload.)
func TestOverloadShedding(t *testing.T) {
	for _, limit := range []int{2, -1} {
		c := startServer(t, runtimetest.Models(t), func(c *Config) { c.HTTP.AdmissionLimit = limit })
		body := []byte(`{"inputs":[{"name":"x","shape":[4,32],"datatype":"FP32","data":[` + strings.TrimSuffix(strings.Repeat("0.5,", 128), ",") + `]}]}`)
		var ok, refused atomic.Int64
		var wg sync.WaitGroup
		deadline := time.Now().Add(time.Second)
		for range 16 {
			wg.Go(func() {
				for time.Now().Before(deadline) {
					status, resp, h, err := c.Do(context.Background(), http.MethodPost, "/v2/models/slow/infer", body, nil)
					switch {
					case err != nil:
						t.Error(err)
						return
					case status == http.StatusOK:
						ok.Add(1)
					case status == http.StatusServiceUnavailable && h.Get("Retry-After") == "1" && strings.Contains(errorBody(t, resp), "inference requests in flight: retry later"):
						refused.Add(1)
					default:
						t.Errorf("status %d, Retry-After %q: %s", status, h.Get("Retry-After"), resp)
						return
					}
				}
			})
		}
		wg.Wait()
		t.Logf("admission_limit %d: %d answered, %d refused", limit, ok.Load(), refused.Load())
		if ok.Load() == 0 || (limit == 2 && refused.Load() == 0) {
			t.Errorf("admission_limit %d: %d answered, %d refused; want both", limit, ok.Load(), refused.Load())
		}
		if status, _, _, err := c.Do(context.Background(), http.MethodGet, "/v2/health/live", nil, nil); err != nil || status != 200 {
			t.Fatalf("after the overload: %d %v", status, err)
		}
		// The limit's state is scraped: nothing left in flight, the fixed
		// limit as configured, the adaptive one's no-load latency measured
		// by the probe that starts it (ended within the second of load).
		got := map[string]float64{}
		for _, name := range []string{"infergate_admission_limit", "infergate_admission_inflight_requests", "infergate_admission_min_rtt_seconds"} {
			if got[name] = metric(t, c, name); math.IsNaN(got[name]) {
				t.Fatalf("admission_limit %d: no %s in the scrape", limit, name)
			}
		}
		t.Logf("admission_limit %d: scraped %v", limit, got)
		if got["infergate_admission_inflight_requests"] != 0 {
			t.Errorf("admission_limit %d: %v in flight after the load", limit, got["infergate_admission_inflight_requests"])
		}
		if limit > 0 && (got["infergate_admission_limit"] != float64(limit) || got["infergate_admission_min_rtt_seconds"] != 0) {
			t.Errorf("fixed limit %d: scraped %v", limit, got)
		}
		// The first probe has ended (within the second of load, and no
		// other starts for 10 s), so the limit is at least the adaptive
		// minimum of 4.
		if limit == -1 && (got["infergate_admission_limit"] < 4 || got["infergate_admission_min_rtt_seconds"] <= 0) {
			t.Errorf("adaptive limit: scraped %v; want a limit of at least 4 and a measured no-load latency", got)
		}
	}
}
