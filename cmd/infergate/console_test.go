package main

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/infergate/infergate/runtime/runtimetest"
)

// consoleModels is how many models the console test serves: the issue's
// 50.
const consoleModels = 50

// consoleRepo is a repository of consoleModels copies of the mlp (two
// versions each); m00 watches its outputs for drift.
func consoleRepo(t testing.TB) string {
	root := t.TempDir()
	for i := range consoleModels {
		dir := filepath.Join(root, fmt.Sprintf("m%02d", i))
		runtimetest.CopyDir(t, filepath.Join(runtimetest.Models(t), "mlp"), dir)
	}
	cfg := filepath.Join(root, "m00", "config.yaml")
	if err := os.WriteFile(cfg, []byte("version_policy: {all: {}}\nmonitoring:\n  drift:\n    reference: {first: 64}\n    window: 64\n    sample_rate: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// browser starts headless Chromium (Debian's) for the test.
func browser(t testing.TB) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not on PATH: install Debian's chromium package (apt-get install chromium; make deps does it)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.WindowSize(1400, 1800), chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	return ctx
}

// TestConsole: the console in a real headless Chromium against a live
// gateway of 50 models: it lists every model and version, a split
// changed through its form takes effect (read back through the API), a
// label changed through the API shows on the page without a reload, and
// a screenshot is written as an artifact (INFERGATE_CONSOLE_SCREENSHOT
// also writes it there: docs/console.png).
func TestConsole(t *testing.T) {
	cl := startServer(t, consoleRepo(t), func(c *Config) {
		c.ModelControl, c.LoadModels = "explicit", []string{"*"}
		c.Console.HistoryInterval = 200 * time.Millisecond
	})
	ctx := browser(t)
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	url := strings.TrimSuffix(cl.BaseURL(), "/") + "/console?refresh=0.3#model=m00"
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	// typeIn puts v in an input as typing does: with its input event, which
	// keeps the page's refreshes off the operator's edit.
	typeIn := func(version, v string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](`(() => { const e = document.querySelector('#split input[data-version="`+version+`"]'); e.value = "`+v+`"; e.dispatchEvent(new Event("input", {bubbles: true})); return true })()`)(ctx, t)
			return err
		})
	}
	start := time.Now()
	if err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitVisible(css(`body[data-ready="1"]`))); err != nil {
		t.Fatal(err)
	}
	rendered, err := chromedp.Run(ctx, chromedp.AttributeValue(css("body"), "data-rendered-ms"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#models tbody tr").length`))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("console with %d models: first render %s ms after navigation start (%v with the browser's start)", consoleModels, rendered.Value, time.Since(start).Round(time.Millisecond))
	if rows != consoleModels {
		t.Fatalf("the page lists %d models, want %d", rows, consoleModels)
	}
	// Then some traffic, for the charts and the drift detail.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		rng := rand.New(rand.NewPCG(1, 2))
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			cl.Do(context.Background(), "POST", "/v2/models/m00/infer", randomRows(rng, 4), nil)
		}
	}()
	defer func() {
		close(stop)
		<-done
	}()
	versions, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#models tr[data-model="m17"] .state')].map(e => e.textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	if len(versions) != 2 || !strings.HasPrefix(versions[0], "v1 READY") || !strings.HasPrefix(versions[1], "v2 READY") {
		t.Errorf("m17's versions on the page: %q", versions)
	}

	// The split form: 30 % to v1, 70 % to v2.
	if err := chromedp.Do(ctx,
		typeIn("1", "30"),
		typeIn("2", "70"),
		chromedp.Click(css(`#split-apply`)),
		chromedp.WaitVisible(css(`#split-result[data-state="applied"]`)),
	); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the split through the form", func() bool {
		status, b, _, err := cl.Do(context.Background(), "GET", "/v2/repository/models/m00/routing", nil, nil)
		if err != nil || status != 200 {
			return false
		}
		var r struct {
			Source  string `json:"source"`
			Routing struct {
				Split []struct {
					Version int64   `json:"version"`
					Weight  float64 `json:"weight"`
				} `json:"split"`
			} `json:"routing"`
		}
		json.Unmarshal(b, &r)
		s := r.Routing.Split
		// Set through the API: persisted as routing.yaml (model control
		// explicit), else kept in memory.
		return (r.Source == "routing.yaml" || r.Source == "api") && len(s) == 2 && s[0].Version == 1 && s[0].Weight == 30 && s[1].Version == 2 && s[1].Weight == 70
	})
	// A bad split is refused by the API, and the page says why.
	if err := chromedp.Do(ctx,
		typeIn("1", "-5"),
		chromedp.Click(css(`#split-apply`)),
		chromedp.WaitVisible(css(`#split-result[data-state="error"]`)),
	); err != nil {
		t.Fatal(err)
	}
	result, err := chromedp.Run(ctx, chromedp.Text(css(`#split-result`)))
	if err != nil || !strings.Contains(result, "weight") {
		t.Errorf("a negative weight: the page says %q (%v)", result, err)
	}

	// A label set through the API shows on the page by itself.
	if status, b, _, err := cl.Do(context.Background(), "PUT", "/v2/repository/models/m05/labels/canary", []byte(`{"version": 2}`), nil); err != nil || status != 200 {
		t.Fatalf("label: %d %v %s", status, err, b)
	}
	for _, sel := range []string{
		`#models tr[data-model="m05"] [data-label="canary"]`,
		// The audit table shows both changes.
		`#audit tr[data-action="label.set"]`, `#audit tr[data-action="routing.set"]`,
		// The charts have samples, and the drift detail its tensor.
		`#chart-rate .uplot`, `#chart-latency .uplot`, `#chart-drift .uplot`, `#drift-detail table`,
	} {
		wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := chromedp.Do(wctx, chromedp.WaitVisible(css(sel)))
		cancel()
		if err != nil {
			html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("detail").innerText`))
			t.Fatalf("%s: %v; the detail shows:\n%s", sel, err, html)
		}
	}
	if label, err := chromedp.Run(ctx, chromedp.Text(css(`#models tr[data-model="m05"] [data-label="canary"]`))); err != nil || label != "canary → v2" {
		t.Errorf("label on the page: %q (%v)", label, err)
	}
	// A running rollout shows with its phase, weight, per-check figures
	// and history when its model is selected; its split form is off.
	putRouting(t, cl, "m01", `{"rollout": {"stable": {"version": 1}, "canary": {"version": 2}, "steps": [20, 100], "interval_seconds": 0.2, "min_requests": 1000000}}`)
	if err := chromedp.Do(ctx,
		chromedp.Click(css(`#models tr[data-model="m01"]`)),
		chromedp.WaitVisible(css(`#rollout [data-phase="holding"]`)),
		chromedp.WaitVisible(css(`#rollout table tbody tr td.inconclusive`)),
	); err != nil {
		t.Fatal(err)
	}
	rollout, err := chromedp.Run(ctx, chromedp.Text(css(`#rollout`)))
	if err != nil || !strings.Contains(rollout, "canary 20%") || !strings.Contains(rollout, "error_rate") || !strings.Contains(rollout, "hold") {
		t.Errorf("the rollout panel: %q (%v)", rollout, err)
	}
	if off, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("split-apply").disabled`)); err != nil || !off {
		t.Errorf("the split form is on during a rollout (%v)", err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(css(`#models tr[data-model="m00"]`)), chromedp.WaitVisible(css(`#chart-drift .uplot`))); err != nil {
		t.Fatal(err)
	}
	// A 90/10 split for the screenshot, then capture.
	if err := chromedp.Do(ctx,
		typeIn("1", "90"),
		typeIn("2", "10"),
		chromedp.Click(css(`#split-apply`)),
		chromedp.Sleep(time.Second),
	); err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	dir := cmp.Or(os.Getenv("TEST_ARTIFACTS"), filepath.Join(os.TempDir(), "infergate-artifacts"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	artifact := filepath.Join(dir, "console.png")
	if err := os.WriteFile(artifact, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", artifact, len(png))
	if out := os.Getenv("INFERGATE_CONSOLE_SCREENSHOT"); out != "" {
		if err := os.WriteFile(out, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestConsoleAuth: the console is an admin endpoint: a client that is
// not on loopback needs the admin token, as a bearer token or, from a
// browser, as the password of a Basic challenge.
func TestConsoleAuth(t *testing.T) {
	tok := filepath.Join(t.TempDir(), "ops.token")
	writeFile(t, tok, []byte("console-token-1"))
	cl := startServer(t, runtimetest.Models(t), func(c *Config) {
		c.Admin.Tokens = []AdminTokenConfig{{"ops", tok, "read"}}
		c.Admin.TrustLoopback = false
	})
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	get := func(path, auth string) (int, string, string) {
		h := http.Header{}
		if auth != "" {
			h["Authorization"] = []string{auth}
		}
		status, b, rh, err := cl.Do(context.Background(), "GET", path, nil, h)
		if err != nil {
			t.Fatal(err)
		}
		return status, string(b), rh.Get("WWW-Authenticate")
	}
	basic := "Basic " + b64("anyone:console-token-1")
	tests := []struct {
		name, path, auth string
		status           int
		challenge        string
	}{
		{"page without a token", "/console", "", 401, "Basic"},
		{"script without a token", "/console/console.js", "", 401, "Basic"},
		{"API without a token", "/v2/repository/models", "", 401, "Bearer"},
		{"page with Basic", "/console", basic, 200, ""},
		{"API with Basic", "/v2/repository/models", basic, 200, ""},
		{"page with the bearer token", "/console/console.css", "Bearer console-token-1", 200, ""},
		{"a wrong Basic password", "/console", "Basic " + b64("anyone:nope"), 401, "Basic"},
		{"a file that is not there", "/console/nope.js", basic, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, b, ch := get(tt.path, tt.auth)
			if status != tt.status || !strings.HasPrefix(ch, tt.challenge) {
				t.Errorf("got %d %q (%s), want %d with a %q challenge", status, ch, b, tt.status, tt.challenge)
			}
		})
	}
	status, body, _ := get("/console", basic)
	if status != 200 || !strings.Contains(body, "<title>infergate console</title>") {
		t.Errorf("the page: %d", status)
	}
}

// randomRows is an inference request of rows random rows for the mlp.
func randomRows(rng *rand.Rand, rows int) []byte {
	data := make([]string, 16*rows)
	for i := range data {
		data[i] = strconv.FormatFloat(rng.Float64()*2-1, 'f', 3, 64)
	}
	return []byte(`{"inputs":[{"name":"input","shape":[` + strconv.Itoa(rows) + `,16],"datatype":"FP32","data":[` + strings.Join(data, ",") + `]}]}`)
}

// BenchmarkConsoleRender measures the console's first render with 50
// models in headless Chromium: from the navigation's start to the page's
// first complete render (the model list, the audit trail and the
// selected model's routing, rollout, charts and drift), in ms, as the
// page itself reports it (data-rendered-ms, performance.now()).
func BenchmarkConsoleRender(b *testing.B) {
	cl := startServer(b, consoleRepo(b), func(c *Config) {
		c.ModelControl, c.LoadModels = "explicit", []string{"*"}
		c.Console.HistoryInterval = 200 * time.Millisecond
	})
	ctx := browser(b)
	url := strings.TrimSuffix(cl.BaseURL(), "/") + "/console#model=m00"
	// A first load starts the browser and fills its cache, as a user's
	// second visit.
	if err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(`body[data-ready="1"]`))); err != nil {
		b.Fatal(err)
	}
	total := 0.0
	for b.Loop() {
		if err := chromedp.Do(ctx, chromedp.Navigate(url+"&n="+strconv.Itoa(b.N)), chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`body[data-ready="1"]`))); err != nil {
			b.Fatal(err)
		}
		ms, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS("body"), "data-rendered-ms"))
		if err != nil {
			b.Fatal(err)
		}
		v, _ := strconv.ParseFloat(ms.Value, 64)
		total += v
	}
	b.ReportMetric(total/float64(b.N), "render-ms")
}

// TestAdminCrossOrigin: a browser's cross-site write to the admin API is
// refused, whatever credentials the browser holds (a loopback client
// needs none); same-origin pages and clients that are not browsers pass.
func TestAdminCrossOrigin(t *testing.T) {
	cl := startServer(t, runtimetest.Models(t), nil)
	host := strings.TrimPrefix(cl.BaseURL(), "http://")
	doc := []byte(`{"split": [{"version": 1, "weight": 1}]}`)
	tests := []struct {
		name   string
		header map[string]string
		status int
	}{
		{"not a browser", nil, 200},
		{"the console's own page", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://" + host}, 200},
		{"another site", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}, 403},
		{"another site, an old browser", map[string]string{"Origin": "https://evil.example"}, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.header {
				h.Set(k, v)
			}
			status, b, _, err := cl.Do(context.Background(), "PUT", "/v2/repository/models/mlp/routing", doc, h)
			if err != nil || status != tt.status {
				t.Errorf("got %d %s (%v), want %d", status, b, err, tt.status)
			}
			if tt.status == 403 && !strings.Contains(string(b), "cross-origin") {
				t.Errorf("refusal %s", b)
			}
		})
	}
	// Reads stay open to the page (GET is safe).
	h := http.Header{"Sec-Fetch-Site": {"cross-site"}}
	if status, _, _, _ := cl.Do(context.Background(), "GET", "/v2/repository/models/mlp/routing", nil, h); status != 200 {
		t.Errorf("a cross-site GET: %d", status)
	}
}
