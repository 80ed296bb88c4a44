package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/infergate/infergate/gateway/client"
	"github.com/infergate/infergate/runtime/runtimetest"
)

// inferRaw posts a JSON request for x with n elements and returns the
// status, the version that answered and the fallback header.
func inferRaw(t *testing.T, cl *client.Client, model string, n int, datatype string) (int, string, string) {
	t.Helper()
	data := make([]string, n)
	for i := range data {
		data[i] = fmt.Sprint(i + 1)
	}
	body := fmt.Sprintf(`{"inputs":[{"name":"x","shape":[%d],"datatype":%q,"data":[%s]}]}`, n, datatype, strings.Join(data, ","))
	status, resp, header, err := cl.Do(context.Background(), "POST", "/v2/models/"+model+"/infer", []byte(body), nil)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		ModelVersion string `json:"model_version"`
	}
	json.Unmarshal(resp, &r)
	return status, r.ModelVersion, header.Get("x-infergate-fallback")
}

// TestBreakerOverHTTP: version 2 of the breaker model fails every run
// that is not given exactly 3 elements. Client errors never trip its
// breaker; 3 execution failures do, and traffic falls back to version 1
// with the x-infergate-fallback header; after open_seconds a probe that
// succeeds closes it again.
func TestBreakerOverHTTP(t *testing.T) {
	root := t.TempDir()
	runtimetest.CopyDir(t, filepath.Join(runtimetest.Models(t), "breaker"), filepath.Join(root, "breaker"))
	cl := startServer(t, root, nil)
	ctx := context.Background()
	doc := `{"split": [{"version": 2, "weight": 1}], "fallback": {"version": 1},
		"breaker": {"consecutive_failures": 3, "min_requests": 100, "open_seconds": 1}}`
	status, body, _, err := cl.Do(ctx, "PUT", "/v2/repository/models/breaker/routing", []byte(doc), nil)
	if err != nil || status != 200 {
		t.Fatalf("PUT routing: %d %v %s", status, err, body)
	}
	if !strings.Contains(string(body), `"persisted":false`) || !strings.Contains(string(body), "stays in memory") {
		t.Errorf("PUT in none mode: got %s, want it to say the document stays in memory", body)
	}
	for range 10 { // the client's errors: never the breaker's
		if status, _, _ := inferRaw(t, cl, "breaker", 4, "INT32"); status != 400 {
			t.Fatalf("wrong datatype: got %d, want 400", status)
		}
	}
	if status, v, fb := inferRaw(t, cl, "breaker", 3, "FP32"); status != 200 || v != "2" || fb != "" {
		t.Fatalf("healthy request: got %d from version %q (fallback %q), want 200 from 2", status, v, fb)
	}
	for i := range 3 {
		if status, v, _ := inferRaw(t, cl, "breaker", 4, "FP32"); status != 500 || v != "" {
			t.Fatalf("failure %d: got %d from version %q, want 500", i, status, v)
		}
	}
	status, v, fb := inferRaw(t, cl, "breaker", 4, "FP32")
	if status != 200 || v != "1" || !strings.Contains(fb, "breaker of version 2 is open") {
		t.Fatalf("breaker open: got %d from version %q, fallback %q; want 200 from 1 with the header", status, v, fb)
	}
	text := scrapeMetrics(t, cl)
	for _, want := range []string{
		`infergate_breaker_state{model="breaker",version="2"} 2`,
		`infergate_fallbacks_total{model="breaker",version="2"} 1`,
		`infergate_route_decisions_total{model="breaker",reason="fallback",version="1"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	// A version pinned by the URL gets no fallback: the client asked for it.
	status, _, _, _ = cl.Do(ctx, "POST", "/v2/models/breaker/versions/2/infer", []byte(`{"inputs":[{"name":"x","shape":[4],"datatype":"FP32","data":[1,2,3,4]}]}`), nil)
	if status != 500 {
		t.Errorf("pinned to the open version: got %d, want its own 500", status)
	}
	time.Sleep(1100 * time.Millisecond) // open_seconds: half-open
	if status, v, fb := inferRaw(t, cl, "breaker", 3, "FP32"); status != 200 || v != "2" || fb != "" {
		t.Fatalf("half-open probe: got %d from version %q (fallback %q), want 200 from 2", status, v, fb)
	}
	if status, v, fb := inferRaw(t, cl, "breaker", 3, "FP32"); status != 200 || v != "2" || fb != "" {
		t.Fatalf("after recovery: got %d from version %q (fallback %q), want 200 from 2", status, v, fb)
	}
	if text := scrapeMetrics(t, cl); !strings.Contains(text, `infergate_breaker_state{model="breaker",version="2"} 0`) {
		t.Errorf("breaker not closed after the probe")
	}
	// The effective document reads back with its defaults.
	status, body, _, _ = cl.Do(ctx, "GET", "/v2/repository/models/breaker/routing", nil, nil)
	if status != 200 || !strings.Contains(string(body), `"failure_ratio":0.5`) || !strings.Contains(string(body), `"source":"api"`) {
		t.Errorf("GET routing: %d %s", status, body)
	}
	// Invalid documents name the field, and change nothing.
	status, body, _, _ = cl.Do(ctx, "PUT", "/v2/repository/models/breaker/routing", []byte(`{"split": [{"version": 2, "weight": -1}]}`), nil)
	if status != http.StatusBadRequest || !strings.Contains(string(body), "split[0].weight: must be positive, got -1") {
		t.Errorf("invalid document: got %d %s", status, body)
	}
	status, body, _, _ = cl.Do(ctx, "PUT", "/v2/repository/models/breaker/routing", []byte(`{"rollout": {"stable": {"version": 1}, "canary": {"version": 1}}}`), nil)
	if status != http.StatusBadRequest || !strings.Contains(string(body), "rollout.canary: is the stable target") {
		t.Errorf("invalid rollout: got %d %s", status, body)
	}
	// The document before the bad ones is still in effect.
	if _, v, fb := inferRaw(t, cl, "breaker", 3, "FP32"); v != "2" || fb != "" {
		t.Errorf("after refused documents: version %q (fallback %q), want 2 as before", v, fb)
	}
	if status, body, _, _ = cl.Do(ctx, "GET", "/v2/repository/models/breaker/rollout", nil, nil); status != http.StatusNotFound {
		t.Errorf("rollout of a model without one: got %d %s, want 404", status, body)
	}
}

func scrapeMetrics(t *testing.T, cl *client.Client) string {
	t.Helper()
	text, _ := scrape(t, cl, "")
	return text
}

func putRouting(tb testing.TB, cl *client.Client, model, doc string) {
	tb.Helper()
	status, body, _, err := cl.Do(context.Background(), "PUT", "/v2/repository/models/"+model+"/routing", []byte(doc), nil)
	if err != nil || status != 200 {
		tb.Fatalf("PUT routing: %d %v %s", status, err, body)
	}
}

var mlpBody = []byte(`{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]}]}`)

// TestShadowOverHTTP: every request answered by version 1 is mirrored to
// version 2 (other weights, so other outputs); the client sees only
// version 1, and the comparisons are counted.
func TestShadowOverHTTP(t *testing.T) {
	cl := startServer(t, filepath.Join(runtimetest.Models(t)), nil)
	putRouting(t, cl, "mlp", `{"split": [{"version": 1, "weight": 1}], "shadow": {"version": 2, "percent": 100}}`)
	ctx := context.Background()
	const n = 20
	for range n {
		status, body, header, err := cl.Do(ctx, "POST", "/v2/models/mlp/infer", mlpBody, nil)
		if err != nil || status != 200 || !strings.Contains(string(body), `"model_version":"1"`) || header.Get("x-infergate-fallback") != "" {
			t.Fatalf("got %d %v %s, want version 1's answer", status, err, body)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		text := scrapeMetrics(t, cl)
		compared := metricValue(text, `infergate_shadow_requests_total{model="mlp",result="compared",version="2"}`)
		dropped := metricValue(text, `infergate_shadow_requests_total{model="mlp",result="dropped",version=""}`)
		if compared+dropped == n {
			if compared == 0 {
				t.Fatal("no shadow request was compared")
			}
			if got := metricValue(text, `infergate_shadow_divergence_count{model="mlp",version="2"}`); got != compared {
				t.Errorf("divergence observed %v times, want %v", got, compared)
			}
			if got := metricValue(text, `infergate_shadow_divergence_sum{model="mlp",version="2"}`); !(got > 0) {
				t.Errorf("versions with other weights diverge by %v, want more than 0", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("shadow: %v compared and %v dropped of %d", compared, dropped, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metricValue returns the value of an exposition line, or 0.
func metricValue(text, series string) float64 {
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			fmt.Sscan(rest, &v)
			return v
		}
	}
	return 0
}

// BenchmarkShadowLatency is the client's latency of one request at a
// time on the small MLP, with every request mirrored to a shadow version
// and without: the shadow runs off the request's path.
func BenchmarkShadowLatency(b *testing.B) {
	for _, tc := range []struct{ name, doc string }{
		{"no-shadow", `{"split": [{"version": 1, "weight": 1}]}`},
		{"shadow-100%", `{"split": [{"version": 1, "weight": 1}], "shadow": {"version": 2, "percent": 100}}`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			cl := startServer(b, filepath.Join(runtimetest.Models(b)), nil)
			putRouting(b, cl, "mlp", tc.doc)
			ctx := context.Background()
			for b.Loop() {
				if status, _, _, err := cl.Do(ctx, "POST", "/v2/models/mlp/infer", mlpBody, nil); err != nil || status != 200 {
					b.Fatal(status, err)
				}
			}
		})
	}
}

// TestRoutingHeadersOverHTTP: x-model-version and x-model-label pin a
// version over the document; a sticky cookie keeps a client on its
// version.
func TestRoutingHeadersOverHTTP(t *testing.T) {
	root := t.TempDir()
	runtimetest.CopyDir(t, filepath.Join(runtimetest.Models(t), "mlp"), filepath.Join(root, "mlp"))
	writeFile(t, filepath.Join(root, "mlp", "config.yaml"), []byte("version_policy: {all: {}}\nversion_labels: {stable: 1}\n"))
	cl := startServer(t, root, nil)
	ctx := context.Background()
	putRouting(t, cl, "mlp", `{"split": [{"version": 1, "weight": 50}, {"version": 2, "weight": 50}], "sticky": {"cookie": "uid"}}`)
	versionOf := func(h http.Header) string {
		t.Helper()
		status, body, _, err := cl.Do(ctx, "POST", "/v2/models/mlp/infer", mlpBody, h)
		if err != nil || status != 200 {
			t.Fatalf("got %d %v %s", status, err, body)
		}
		var r struct {
			ModelVersion string `json:"model_version"`
		}
		json.Unmarshal(body, &r)
		return r.ModelVersion
	}
	for _, tc := range []struct{ header, value, want string }{{"x-model-version", "2", "2"}, {"x-model-label", "stable", "1"}} {
		for range 5 {
			if got := versionOf(http.Header{tc.header: {tc.value}}); got != tc.want {
				t.Errorf("%s: %s: got version %s, want %s", tc.header, tc.value, got, tc.want)
			}
		}
	}
	seen := map[string]bool{}
	for i := range 20 {
		cookie := http.Header{"Cookie": {fmt.Sprintf("uid=user-%d", i)}}
		first := versionOf(cookie)
		seen[first] = true
		for range 3 {
			if got := versionOf(cookie); got != first {
				t.Fatalf("user-%d moved from version %s to %s", i, first, got)
			}
		}
	}
	if !seen["1"] || !seen["2"] {
		t.Errorf("20 cookies all landed on %v: the split is not applied", seen)
	}
}
