package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	promModel "github.com/prometheus/common/model"

	"github.com/infergate/infergate/gateway/client"
	"github.com/infergate/infergate/monitoring/monitoringtest"
	"github.com/infergate/infergate/runtime/runtimetest"
)

// scrape returns the body of GET /metrics.
func scrape(t *testing.T, cl *client.Client, accept string) (string, http.Header) {
	t.Helper()
	h := http.Header{}
	if accept != "" {
		h.Set("Accept", accept)
	}
	status, body, header, err := cl.Do(context.Background(), "GET", "/metrics", nil, h)
	if err != nil || status != 200 {
		t.Fatalf("GET /metrics: %d %v: %s", status, err, body)
	}
	return string(body), header
}

// families parses a text exposition into its families.
func families(t *testing.T, text string) map[string]int {
	t.Helper()
	parser := expfmt.NewTextParser(promModel.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse scrape: %v", err)
	}
	out := map[string]int{}
	for name, f := range fams {
		out[name] = len(f.GetMetric())
	}
	return out
}

func mlpRequest(rows int, rng *rand.Rand, shift func(j int) float32) *client.Request {
	data := make([]float32, rows*256)
	for i := range data {
		data[i] = rng.Float32()*2 - 1
		if shift != nil {
			data[i] += shift(i % 256)
		}
	}
	return &client.Request{Inputs: []client.Tensor{{Name: "input", Datatype: "FP32", Shape: []int64{int64(rows), 256}, Data: data}}}
}

// driftRepo is a repository with drift_mlp watched on its input and
// output, under the given drift config lines.
func driftRepo(t *testing.T, drift string) string {
	t.Helper()
	root := t.TempDir()
	runtimetest.CopyDir(t, filepath.Join(runtimetest.Models(t), "drift_mlp"), filepath.Join(root, "drift_mlp"))
	runtimetest.CopyDir(t, filepath.Join(runtimetest.Models(t), "mlp"), filepath.Join(root, "mlp"))
	writeFile(t, filepath.Join(root, "drift_mlp", "config.yaml"), []byte("max_batch_size: 64\ndynamic_batching: {}\nmonitoring:\n  drift:\n"+drift))
	return root
}

// TestMetricsScrape checks a live scrape: promtool check metrics is
// clean, every family the issue names (and the admission limit's) is
// there, OpenMetrics is served on request, --metrics-port serves the
// same, and --allow-metrics=false turns it off.
func TestMetricsScrape(t *testing.T) {
	root := driftRepo(t, "    inputs: [input]\n    reference: {first: 100}\n")
	port := freePort(t)
	cl := startServer(t, root, func(c *Config) {
		c.Metrics.Port = port
		c.Metrics.Address = "127.0.0.1"
		c.HTTP.AdmissionLimit = -1 // its gauges in the scrape (one request at a time: none refused)
	})
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	for range 30 {
		if _, err := cl.Infer(ctx, "drift_mlp", "", mlpRequest(5, rng, nil)); err != nil {
			t.Fatal(err)
		}
	}
	// A 400, a 404 of no model, a 404 of no version.
	cl.Infer(ctx, "drift_mlp", "", &client.Request{Inputs: []client.Tensor{{Name: "input", Datatype: "FP32", Shape: []int64{1, 3}, Data: []float32{1, 2, 3}}}})
	cl.Infer(ctx, "nosuch", "", mlpRequest(1, rng, nil))
	cl.Infer(ctx, "drift_mlp", "7", mlpRequest(1, rng, nil))

	text, header := scrape(t, cl, "")
	cmd := exec.Command(monitoringtest.Tool(t, "promtool"), "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q, want the text format", ct)
	}
	fams := families(t, text)
	for _, name := range []string{
		"infergate_requests_total", "infergate_request_duration_seconds", "infergate_queue_duration_seconds",
		"infergate_compute_duration_seconds", "infergate_batch_size", "infergate_queue_depth", "infergate_queue_capacity",
		"infergate_inflight_requests", "infergate_rejected_total", "infergate_model_loads_total",
		"infergate_model_load_duration_seconds", "infergate_resident_versions", "infergate_cache_lookups_total",
		"infergate_coalesced_total", "infergate_drift_score", "infergate_drift_detected", "infergate_drift_window_samples",
		"infergate_drift_dropped_total", "infergate_received_bytes_total", "infergate_sent_bytes_total",
		"infergate_admission_limit", "infergate_admission_inflight_requests", "infergate_admission_min_rtt_seconds",
		"go_goroutines", "process_resident_memory_bytes",
	} {
		if fams[name] == 0 {
			t.Errorf("family %s missing from the scrape", name)
		}
	}
	for _, want := range []string{
		`infergate_requests_total{code="200",model="drift_mlp",protocol="http",version="1"} 30`,
		`infergate_requests_total{code="400",model="drift_mlp",protocol="http",version="1"} 1`,
		`infergate_requests_total{code="404",model="",protocol="http",version=""} 1`,
		`infergate_requests_total{code="404",model="drift_mlp",protocol="http",version=""} 1`,
		`infergate_batch_size_count{model="drift_mlp",version="1"} 30`,
		`infergate_model_loads_total{model="drift_mlp",result="success"} 1`,
		`infergate_queue_capacity{model="drift_mlp",version="1"} 1024`,
		`infergate_drift_score{kind="prediction",model="drift_mlp",statistic="p_value",tensor="output",version="1"}`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}

	_, header = scrape(t, cl, "application/openmetrics-text; version=1.0.0")
	if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text") {
		t.Errorf("Content-Type %q, want OpenMetrics", ct)
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("--metrics-port: status %d", resp.StatusCode)
	}

	off := startServer(t, root, func(c *Config) { c.Metrics.Allow = false })
	if status, _, _, _ := off.Do(ctx, "GET", "/metrics", nil, nil); status != 404 {
		t.Errorf("--allow-metrics=false: /metrics answers %d, want 404", status)
	}
}

// versionSeries counts the scraped series labelled with a model version.
func versionSeries(t *testing.T, cl *client.Client, model, version string) int {
	t.Helper()
	text, _ := scrape(t, cl, "")
	parser := expfmt.NewTextParser(promModel.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["model"] == model && labels["version"] == version {
				n++
			}
		}
	}
	return n
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestUnloadedSeriesDisappear: a version's series go with its unload.
func TestUnloadedSeriesDisappear(t *testing.T) {
	root := driftRepo(t, "    inputs: [input]\n")
	cl := startServer(t, root, func(c *Config) { c.ModelControl = "explicit"; c.LoadModels = []string{"*"} })
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	if _, err := cl.Infer(ctx, "drift_mlp", "", mlpRequest(2, rng, nil)); err != nil {
		t.Fatal(err)
	}
	if n := versionSeries(t, cl, "drift_mlp", "1"); n == 0 {
		t.Fatalf("no series of drift_mlp v1 before the unload")
	}
	if status, body, _, err := cl.Do(ctx, "POST", "/v2/repository/models/drift_mlp/unload", nil, nil); err != nil || status != 200 {
		t.Fatalf("unload: %d %v %s", status, err, body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for versionSeries(t, cl, "drift_mlp", "1") > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d series of drift_mlp v1 still scraped after the unload", versionSeries(t, cl, "drift_mlp", "1"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if text, _ := scrape(t, cl, ""); !strings.Contains(text, `infergate_model_unloads_total{model="drift_mlp",reason="unload"} 1`) {
		t.Errorf("unload not counted")
	}
}

// driftReport is the part of GET .../drift the tests read.
type driftReport struct {
	Reference struct {
		Ready   bool  `json:"ready"`
		Samples int64 `json:"samples"`
	} `json:"reference"`
	Processed int64 `json:"processed"`
	Dropped   int64 `json:"dropped"`
	Tensors   []struct {
		Kind     string  `json:"kind"`
		Name     string  `json:"name"`
		Detected bool    `json:"detected"`
		Samples  int64   `json:"samples"`
		PSI      float64 `json:"psi"`
		PValue   float64 `json:"p_value"`
	} `json:"tensors"`
}

// settled waits until the drift worker has taken every request sent, and
// returns the report.
func settled(t *testing.T, cl *client.Client, sent int64) driftReport {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		status, body, _, err := cl.Do(context.Background(), "GET", "/v2/repository/models/drift_mlp/versions/1/drift", nil, nil)
		if err != nil || status != 200 {
			t.Fatalf("drift report: %d %v %s", status, err, body)
		}
		var r driftReport
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatal(err)
		}
		if r.Processed+r.Dropped >= sent {
			if r.Dropped > 0 {
				t.Fatalf("%d sampled requests dropped: the test must count every row", r.Dropped)
			}
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("drift worker took %d of %d requests", r.Processed, sent)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestDriftOverHTTP runs the drift scenarios through the real
// server: 256 features uniform on [-1, 1], a reference of the first 1000
// rows (or a reference.json built by "infergate reference build" from
// such rows), a window of 1000 rows. An unshifted stream of 10 windows
// raises no alarm, for the inputs, the outputs or the predicted class;
// +1.5 on the first 32 features raises the input's alarm within 300 rows
// and the predicted class's within 1000; and the gauges say the same as
// the report.
func TestDriftOverHTTP(t *testing.T) {
	for _, tc := range []struct {
		name  string
		drift string
	}{
		{"first rows", "    inputs: [input]\n    reference: {first: 1000}\n    window: 1000\n"},
		{"reference file", "    inputs: [input]\n    reference: {file: reference.json}\n    window: 1000\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := driftRepo(t, tc.drift)
			rng := rand.New(rand.NewPCG(11, 12))
			const rows = 10 // per request
			if strings.Contains(tc.drift, "file") {
				buildReference(t, root, rand.New(rand.NewPCG(21, 22)))
			}
			// Evaluated at every tenth of a window, so that the test
			// counts the rows to an alarm.
			cl := startServer(t, root, func(c *Config) { c.driftEvaluateEvery = -1 })
			ctx := context.Background()
			sent := int64(0)
			send := func(n int, shift func(int) float32) {
				t.Helper()
				for range n / rows {
					if _, err := cl.Infer(ctx, "drift_mlp", "", mlpRequest(rows, rng, shift)); err != nil {
						t.Fatal(err)
					}
					sent++
				}
			}
			if !strings.Contains(tc.drift, "file") {
				send(1000, nil)
				if r := settled(t, cl, sent); !r.Reference.Ready || r.Reference.Samples != 1000 {
					t.Fatalf("reference after 1000 rows: %+v", r.Reference)
				}
			}
			for w := range 10 {
				for range 10 { // evaluated every 100 rows
					send(100, nil)
					r := settled(t, cl, sent)
					for _, tr := range r.Tensors {
						if tr.Detected {
							t.Fatalf("window %d: false alarm on %s %s (psi %.3f, p %.2g)", w, tr.Kind, tr.Name, tr.PSI, tr.PValue)
						}
					}
				}
			}
			shift := func(j int) float32 {
				if j < 32 {
					return 1.5
				}
				return 0
			}
			detectedAt := map[string]int{}
			for n := 100; n <= 1000; n += 100 {
				send(100, shift)
				for _, tr := range settled(t, cl, sent).Tensors {
					if _, seen := detectedAt[tr.Kind]; tr.Detected && !seen {
						detectedAt[tr.Kind] = n
					}
				}
			}
			t.Logf("alarm after %v shifted rows", detectedAt)
			if at, ok := detectedAt["input"]; !ok || at > 300 {
				t.Errorf("input drift raised after %d rows (0: never), want within 300", at)
			}
			if _, ok := detectedAt["prediction"]; !ok {
				t.Errorf("predicted-class drift never raised within 1000 shifted rows")
			}
			text, _ := scrape(t, cl, "")
			if !strings.Contains(text, `infergate_drift_detected{kind="input",model="drift_mlp",tensor="input",version="1"} 1`) {
				t.Errorf("infergate_drift_detected is not 1 for the shifted input")
			}
		})
	}
}

// buildReference writes 1000 unshifted rows as a JSON-lines file of
// requests and runs "infergate reference build" on it.
func buildReference(t *testing.T, root string, rng *rand.Rand) {
	t.Helper()
	var lines bytes.Buffer
	for range 100 {
		req := mlpRequest(10, rng, nil)
		body, _, err := client.EncodeRequest(req)
		if err != nil {
			t.Fatal(err)
		}
		lines.Write(body)
		lines.WriteByte('\n')
	}
	samples := filepath.Join(t.TempDir(), "samples.jsonl")
	writeFile(t, samples, lines.Bytes())
	var out bytes.Buffer
	err := run(context.Background(), []string{"reference", "build", "--model-repository", root, "--model", "drift_mlp",
		"--samples", samples, "--onnxruntime-lib", runtimetest.Library(t)}, &out, &out)
	if err != nil {
		t.Fatalf("reference build: %v\n%s", err, out.String())
	}
	if _, err := os.Stat(filepath.Join(root, "drift_mlp", "1", "reference.json")); err != nil {
		t.Fatalf("reference build wrote no reference.json: %v\n%s", err, out.String())
	}
}

// TestPrometheusScrapesGateway runs Debian's prometheus against a live
// gateway and asks PromQL for the series; it also checks that every
// family the shipped Grafana dashboard queries is in the scrape.
func TestPrometheusScrapesGateway(t *testing.T) {
	root := driftRepo(t, "    inputs: [input]\n    reference: {first: 100}\n")
	runtimetest.CopyDir(t, filepath.Join(runtimetest.Models(t), "breaker"), filepath.Join(root, "breaker"))
	cl := startServer(t, root, nil)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(5, 6))
	for range 20 {
		if _, err := cl.Infer(ctx, "drift_mlp", "", mlpRequest(4, rng, nil)); err != nil {
			t.Fatal(err)
		}
	}
	// The router's families: a breaker and a shadow on mlp, a rollout on
	// breaker (its hour-long interval never ends: the gauges are enough).
	putRouting(t, cl, "mlp", `{"split": [{"version": 1, "weight": 1}], "shadow": {"version": 2, "percent": 100},
		"fallback": {"version": 2}, "breaker": {}}`)
	for range 5 {
		if status, _, _, err := cl.Do(ctx, "POST", "/v2/models/mlp/infer", mlpBody, nil); err != nil || status != 200 {
			t.Fatalf("mlp: %d %v", status, err)
		}
	}
	putRouting(t, cl, "breaker", `{"rollout": {"stable": {"version": 1}, "canary": {"version": 2}, "interval_seconds": 3600}}`)
	prom := startPrometheus(t, strings.TrimPrefix(cl.BaseURL(), "http://"))
	query := `sum by (model, version, code) (infergate_requests_total{model="drift_mlp"})`
	var got string
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(prom + "/api/v1/query?query=" + url.QueryEscape(query))
		if err == nil {
			var r struct {
				Data struct {
					Result []struct {
						Metric map[string]string `json:"metric"`
						Value  []any             `json:"value"`
					} `json:"result"`
				} `json:"data"`
			}
			json.NewDecoder(resp.Body).Decode(&r)
			resp.Body.Close()
			if len(r.Data.Result) == 1 {
				got = fmt.Sprintf("%v %v", r.Data.Result[0].Metric, r.Data.Result[0].Value[1])
				break
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if want := "map[code:200 model:drift_mlp version:1] 20"; got != want {
		t.Fatalf("PromQL %s: got %q, want %q", query, got, want)
	}
	// Native histograms: Prometheus stored the request durations as one.
	resp, err := http.Get(prom + "/api/v1/query?query=" + url.QueryEscape(`histogram_count(infergate_request_duration_seconds{model="drift_mlp"})`))
	if err != nil {
		t.Fatal(err)
	}
	var hist struct {
		Data struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	json.NewDecoder(resp.Body).Decode(&hist)
	resp.Body.Close()
	if len(hist.Data.Result) == 0 {
		t.Errorf("no native histogram of infergate_request_duration_seconds in Prometheus")
	}

	text, _ := scrape(t, cl, "")
	fams := families(t, text)
	dash, err := os.ReadFile(filepath.Join(runtimetest.Root(t), "configs", "grafana", "infergate.json"))
	if err != nil {
		t.Fatal(err)
	}
	names, err := monitoringtest.DashboardMetricNames(dash)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if n == "up" {
			continue
		}
		if _, ok := fams[n]; !ok {
			t.Errorf("the dashboard queries %s, which the scrape does not export (it has %v)", n, slices.Sorted(maps.Keys(fams)))
		}
	}
}

// startPrometheus runs Debian's prometheus scraping targets (host:port)
// every second, as job infergate, until the test ends, and returns its
// base URL. Its log is shown when the test fails.
func startPrometheus(t *testing.T, targets ...string) string {
	t.Helper()
	return startPrometheusOn(t, freePort(t), targets...)
}

// startPrometheusOn is startPrometheus on a given web port.
func startPrometheusOn(t *testing.T, webPort int, targets ...string) string {
	t.Helper()
	bin := monitoringtest.Tool(t, "prometheus")
	dir := t.TempDir()
	quoted := make([]string, len(targets))
	for i, tg := range targets {
		quoted[i] = strconv.Quote(tg)
	}
	config := fmt.Sprintf("global: {scrape_interval: 1s, evaluation_interval: 1s}\nscrape_configs:\n  - job_name: infergate\n    static_configs: [{targets: [%s]}]\n",
		strings.Join(quoted, ", "))
	writeFile(t, filepath.Join(dir, "prometheus.yml"), []byte(config))
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), fmt.Sprintf("--web.listen-address=127.0.0.1:%d", webPort),
		"--enable-feature=native-histograms")
	var plog syncBuffer
	cmd.Stdout, cmd.Stderr = &plog, &plog
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", plog.String())
		}
	})
	return fmt.Sprintf("http://127.0.0.1:%d", webPort)
}

// TestEvictedSeries: an evicted version keeps its series (it stays
// READY and loads again on demand); unloading it then deletes them.
func TestEvictedSeries(t *testing.T) {
	root := driftRepo(t, "    inputs: [input]\n")
	cl := startServer(t, root, func(c *Config) {
		c.ModelControl = "explicit"
		c.LoadModels = []string{"*"}
		c.MaxResidentVersions = 1
	})
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 8))
	if _, err := cl.Infer(ctx, "drift_mlp", "", mlpRequest(2, rng, nil)); err != nil {
		t.Fatal(err)
	}
	mlp := &client.Request{Inputs: []client.Tensor{{Name: "input", Datatype: "FP32", Shape: []int64{1, 16}, Data: make([]float32, 16)}}}
	if _, err := cl.Infer(ctx, "mlp", "2", mlp); err != nil { // evicts drift_mlp
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body, _, err := cl.Do(ctx, "POST", "/v2/repository/index", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(body), `"name":"drift_mlp","version":"1","state":"READY","reason":"evicted`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("drift_mlp was not evicted: %s", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := versionSeries(t, cl, "drift_mlp", "1"); n == 0 {
		t.Fatal("the evicted version lost its series")
	}
	if status, body, _, err := cl.Do(ctx, "POST", "/v2/repository/models/drift_mlp/unload", nil, nil); err != nil || status != 200 {
		t.Fatalf("unload: %d %v %s", status, err, body)
	}
	for versionSeries(t, cl, "drift_mlp", "1") > 0 {
		if time.Now().After(deadline) {
			t.Fatal("series of the unloaded evicted version still scraped")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
