package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/infergate/infergate/runtime/runtimetest"
)

// TestTenantLimits: a tenant over its rate gets 429 with Retry-After
// while another tenant is unaffected; a tenant calling a model it may
// not gets 403; requests of no configured tenant get the limits of
// "other"; each refusal is counted in infergate_tenant_rejected_total
// (issue 12).
func TestTenantLimits(t *testing.T) {
	c := startServer(t, runtimetest.Models(t), func(c *Config) {
		if err := decodeConfig([]byte(`
tenants:
  limits:
    - {name: batchjob, rate_per_second: 0.001, burst: 3}
    - {name: search, rate_per_second: 10000, models: [mlp]}
    - {name: other, rate_per_second: 0.001, burst: 1}
`), c); err != nil {
			t.Fatal(err)
		}
	})
	body := []byte(`{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[` + strings.Repeat("1,", 15) + `1]}]}`)
	call := func(tenant, model string) (int, string, http.Header) {
		t.Helper()
		h := http.Header{}
		if tenant != "" {
			h.Set("X-Tenant", tenant)
		}
		status, b, hdr, err := c.Do(context.Background(), http.MethodPost, "/v2/models/"+model+"/infer", body, h)
		if err != nil {
			t.Fatal(err)
		}
		return status, string(b), hdr
	}
	for i := range 3 { // the burst
		if status, b, _ := call("batchjob", "mlp"); status != 200 {
			t.Fatalf("batchjob request %d within its burst: %d %s", i, status, b)
		}
	}
	status, b, h := call("batchjob", "mlp")
	if status != http.StatusTooManyRequests || h.Get("Retry-After") == "" ||
		errorBody(t, []byte(b)) != `tenant "batchjob" is over its rate of 0.001 requests per second: retry later` {
		t.Fatalf("batchjob past its burst: %d %s (Retry-After %q)", status, b, h.Get("Retry-After"))
	}
	for i := range 20 { // another tenant is unaffected
		if status, b, _ := call("search", "mlp"); status != 200 {
			t.Fatalf("search request %d: %d %s", i, status, b)
		}
	}
	if status, b, _ := call("search", "identity_fp32"); status != http.StatusForbidden || errorBody(t, []byte(b)) != `tenant "search" may not call model "identity_fp32"` {
		t.Fatalf("search on another model: %d %s", status, b)
	}
	// Unknown tenants, and none at all, share other's limits.
	if status, b, _ := call("", "mlp"); status != 200 {
		t.Fatalf("first request of no tenant: %d %s", status, b)
	}
	if status, b, _ := call("someone-else", "mlp"); status != http.StatusTooManyRequests {
		t.Fatalf("an unknown tenant after other's burst: %d %s", status, b)
	}
	text := scrapeMetrics(t, c)
	for _, want := range []string{
		`infergate_tenant_rejected_total{reason="rate",tenant="batchjob"} 1`,
		`infergate_tenant_rejected_total{reason="model",tenant="search"} 1`,
		`infergate_tenant_rejected_total{reason="rate",tenant="other"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	if strings.Contains(text, "someone-else") {
		t.Error("an unconfigured tenant's name is a label value")
	}
}
