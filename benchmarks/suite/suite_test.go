package suite

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/infergate/infergate/benchmarks/load"
	"github.com/infergate/infergate/runtime"
)

// helperEnv makes the test binary a child server (see TestMain).
const helperEnv = "SUITE_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "serve":
		helperServe("HTTP")
		return
	case "serve-grpc":
		helperServe("gRPC")
		return
	case "exit":
		fmt.Fprintln(os.Stderr, "helper: giving up")
		os.Exit(3)
	}
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
	)
}

// helperServe logs its address as infergate does, over protocol, and
// answers every HTTP request with 200 until SIGTERM, which the default
// handling of the signal turns into an exit.
func helperServe(protocol string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.Exit(2)
	}
	fmt.Fprintf(os.Stderr, "time=x level=INFO msg=\"serving KServe v2 over %s\" address=%s\n", protocol, ln.Addr())
	http.Serve(ln, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
}

func TestProcess(t *testing.T) {
	t.Parallel()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx := context.Background()

	t.Run("serves and stops", func(t *testing.T) {
		p, err := startProcess(ctx, "helper", filepath.Join(dir, "serve.log"), []string{self}, []string{helperEnv + "=serve"})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(p.url, "http://127.0.0.1:") {
			t.Errorf("url: got %q", p.url)
		}
		// SIGTERM kills the helper (it has no handler): an error, said once
		// and again on a second stop.
		err1, err2 := p.stop(), p.stop()
		if err1 == nil || err2 == nil || err1.Error() != err2.Error() {
			t.Errorf("stop: got %v then %v, want the same signal error twice", err1, err2)
		}
		log, _ := os.ReadFile(filepath.Join(dir, "serve.log"))
		if !strings.Contains(string(log), "serving KServe v2") {
			t.Errorf("log: got %q", log)
		}
	})
	t.Run("gRPC only", func(t *testing.T) {
		// Its url is host:port, and readiness is not asked over HTTP.
		p, err := startProcess(ctx, "helper", filepath.Join(dir, "grpc.log"), []string{self}, []string{helperEnv + "=serve-grpc"})
		if err != nil {
			t.Fatal(err)
		}
		defer p.stop()
		if !strings.HasPrefix(p.url, "127.0.0.1:") {
			t.Errorf("url: got %q, want host:port", p.url)
		}
	})
	t.Run("exits at once", func(t *testing.T) {
		_, err := startProcess(ctx, "helper", filepath.Join(dir, "exit.log"), []string{self}, []string{helperEnv + "=exit"})
		if err == nil || !strings.Contains(err.Error(), "exited before serving") || !strings.Contains(err.Error(), "exit.log") {
			t.Errorf("got %v, want an early exit pointing at the log", err)
		}
	})
	t.Run("no such binary", func(t *testing.T) {
		_, err := startProcess(ctx, "helper", filepath.Join(dir, "none.log"), []string{filepath.Join(dir, "nope")}, nil)
		if err == nil {
			t.Error("got no error")
		}
	})
}

func TestAddressLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		line, want string
	}{
		{`time=2026-11-28T14:13:48Z level=INFO msg="serving KServe v2 over HTTP" address=127.0.0.1:39201`, "127.0.0.1:39201"},
		{`time=x level=INFO msg="serving KServe v2 over HTTP" server=transport address=127.0.0.1:8001 gomaxprocs=2`, "127.0.0.1:8001"},
		{`{"msg":"serving KServe v2 over HTTP","address":"[::1]:8000"}`, ""},
		{`level=INFO msg="onnxruntime loaded" address=nope`, ""},
	} {
		m := addressLine.FindStringSubmatch(tc.line)
		got := ""
		if m != nil {
			got = m[1]
		}
		if got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.line, got, tc.want)
		}
	}
}

const goodScenario = `
name: s
model: {name: m, path: x.onnx}
targets:
  - name: fast
    measure: {server: infergate-batching, concurrency: 64, metric: throughput}
    op: ">="
    factor: 0.8
    of: [{server: transport, concurrency: 64}]
`

func TestParseScenario(t *testing.T) {
	t.Parallel()
	s, err := ParseScenario([]byte(goodScenario))
	if err != nil {
		t.Fatal(err)
	}
	if s.Protocol != "json" || s.Rows != 1 || fmt.Sprint(s.Concurrency) != "[1 4 16 64]" || s.CDFConcurrency != 64 ||
		fmt.Sprint(s.ONNXRuntime.Batches) != "[1]" || len(s.Servers) != len(Servers)-1 || slices.Contains(s.Servers, ServerTransportGRPC) || s.Model.Config != "max_batch_size: 64\n" ||
		s.Targets[0].Of[0].Metric != MetricThroughput {
		t.Errorf("defaults: got %+v", s)
	}
	for _, tc := range []struct {
		desc, yaml, want string
	}{
		{"unknown field", "name: s\nmodel: {name: m, path: x}\nspeed: 3\n", "field speed not found"},
		{"no name", "model: {name: m, path: x}\n", "name: required"},
		{"no model path", "name: s\nmodel: {name: m}\n", "model.path: required"},
		{"bad protocol", "name: s\nmodel: {name: m, path: x}\nprotocol: grpc\n", `protocol: "grpc"`},
		{"zero concurrency", "name: s\nmodel: {name: m, path: x}\nconcurrency: [1, 0]\n", "concurrency[1]: 0"},
		{"bad batch", "name: s\nmodel: {name: m, path: x}\nonnxruntime: {batches: [-2]}\n", "onnxruntime.batches[0]"},
		{"unknown server", "name: s\nmodel: {name: m, path: x}\nservers: [triton]\n", `servers[0]: unknown server "triton"`},
		{"bad shape", "name: s\nmodel: {name: m, path: x}\nshapes: {x: [1, 0]}\n", "shapes.x"},
		{"bad op", strings.Replace(goodScenario, `">="`, `">"`, 1), `targets[0]: op: ">"`},
		{"bad metric", strings.Replace(goodScenario, "metric: throughput", "metric: p42", 1), "targets[0]: measure: metric"},
		{"bad reference", strings.Replace(goodScenario, "server: transport", "server: wrk", 1), `targets[0]: of[0]: server: unknown server "wrk"`},
		{"no reference", strings.Replace(goodScenario, "of: [{server: transport, concurrency: 64}]", "of: []", 1), "targets[0]: of: at least one"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			_, err := ParseScenario([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// TestScenarioFiles checks that the committed scenarios parse.
func TestScenarioFiles(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("..", "scenarios", "*.yaml"))
	if err != nil || len(files) < 4 {
		t.Fatalf("got %v (%v), want the four standard scenarios", files, err)
	}
	for _, f := range files {
		if _, err := LoadScenario(f); err != nil {
			t.Error(err)
		}
	}
}

func result(label string, c, rows int, tput, p50, p99 float64) *load.Result {
	return &load.Result{Label: label, Concurrency: c, Rows: rows, OK: 100, Throughput: tput, ItemsPerSec: tput * float64(rows), Latency: load.Latency{P50: p50, P99: p99}}
}

func TestEvaluate(t *testing.T) {
	t.Parallel()
	results := []*load.Result{
		result(ServerONNXRuntime, 1, 1, 20000, 35, 150),
		result(ServerONNXRuntime, 2, 1, 24000, 34, 800),
		result(ServerONNXRuntime, 1, 64, 2300, 370, 1200),
		result(ServerONNXRuntime, 2, 64, 2100, 500, 7000),
		result(ServerTransport, 1, 1, 54000, 16, 36),
		result(ServerTransport, 64, 1, 60000, 900, 2700),
		result(ServerInfergateBatching, 1, 1, 7000, 60, 300),
		result(ServerInfergateBatching, 64, 1, 50000, 1200, 3000),
		result(ServerHandwritten, 64, 1, 5000, 10000, 50000),
		result("external-2", 64, 1, 1000, 10, 10),
	}
	open := result(ServerInfergateBatching, 0, 1, 40000, 500, 2500)
	open.Mode, open.Rate = "poisson", 40000
	results = append(results, open)
	pt := func(server string, c int, metric string) Point {
		return Point{Server: server, Concurrency: c, Metric: metric}
	}
	for _, tc := range []struct {
		desc      string
		target    Target
		held      bool
		value     float64
		bound     float64
		ratio     float64
		missing   string
		detailHas string
	}{
		{
			desc:   "80% of transport holds",
			target: Target{Measure: pt(ServerInfergateBatching, 64, MetricThroughput), Op: ">=", Factor: 0.8, Of: []Point{pt(ServerTransport, 64, MetricThroughput)}},
			held:   true, value: 50000, bound: 48000, ratio: 50000.0 / 60000, detailHas: "transport c64 60.0k req/s",
		},
		{
			desc: "a composite of transport and compute",
			target: Target{Measure: pt(ServerInfergateBatching, 64, MetricThroughput), Op: ">=", Factor: 0.8, Combine: CombineComposite,
				Of: []Point{pt(ServerTransport, 64, MetricThroughput), {Server: ServerONNXRuntime, Rows: 64, Metric: MetricItems}}},
			// 1/(1/60000 + 1/147200) = 42625.5
			held: true, value: 50000, bound: 0.8 / (1.0/60000 + 1.0/(2300*64)), ratio: 50000 * (1.0/60000 + 1.0/(2300*64)),
			detailHas: "0.8 × composite(transport c64 60.0k req/s, onnxruntime c1 batch 64",
		},
		{
			desc: "the open-loop run, apart from the closed loops",
			target: Target{Measure: Point{Server: ServerInfergateBatching, Mode: "poisson", Metric: MetricP99}, Op: "<=", Factor: 4,
				Of: []Point{{Server: ServerInfergateBatching, Mode: "poisson", Metric: MetricP50}}},
			held: false, value: 2500, bound: 2000, ratio: 5, detailHas: "poisson 40.0k req/s",
		},
		{
			desc:   "3× hand-written holds",
			target: Target{Measure: pt(ServerInfergateBatching, 64, MetricThroughput), Op: ">=", Factor: 3, Of: []Point{pt(ServerHandwritten, 64, MetricThroughput)}},
			held:   true, value: 50000, bound: 15000, ratio: 10,
		},
		{
			desc:   "p99 above the hand-written's misses",
			target: Target{Measure: pt(ServerInfergateBatching, 64, MetricP99), Op: "<=", Factor: 1, Of: []Point{pt(ServerTransport, 64, MetricP99)}},
			held:   false, value: 3000, bound: 2700, ratio: 3000.0 / 2700,
		},
		{
			desc: "p50 under a sum plus slack",
			target: Target{Measure: pt(ServerInfergateBatching, 1, MetricP50), Op: "<=", Factor: 1, Plus: 20,
				Of: []Point{pt(ServerTransport, 1, MetricP50), {Server: ServerONNXRuntime, Concurrency: 1, Rows: 1, Metric: MetricP50}}},
			held: true, value: 60, bound: 71, ratio: 60.0 / 51, detailHas: "+ 20.0µs = 71.0µs",
		},
		{
			desc:   "onnxruntime at batch 64 takes its best run",
			target: Target{Measure: pt(ServerInfergateBatching, 64, MetricItems), Op: ">=", Factor: 0.7, Of: []Point{{Server: ServerONNXRuntime, Rows: 64, Metric: MetricItems}}},
			held:   false, value: 50000, bound: 0.7 * 2300 * 64, ratio: 50000.0 / (2300 * 64), detailHas: "onnxruntime c1 batch 64",
		},
		{
			desc:   "external by its numbered label",
			target: Target{Measure: pt(ServerExternal, 64, MetricThroughput), Op: ">=", Factor: 1, Of: []Point{pt(ServerHandwritten, 64, MetricThroughput)}},
			held:   false, value: 1000, bound: 5000, ratio: 0.2,
		},
		{
			desc:    "a point never measured",
			target:  Target{Measure: pt(ServerInfergate, 64, MetricThroughput), Op: ">=", Factor: 1, Of: []Point{pt(ServerTransport, 64, MetricThroughput)}},
			missing: "no successful run of infergate c64",
		},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			tc.target.Name = tc.desc
			o := Evaluate("s", tc.target, results)
			if tc.missing != "" {
				if o.Held || !strings.Contains(o.Missing, tc.missing) {
					t.Errorf("got held %v, missing %q; want missing %q", o.Held, o.Missing, tc.missing)
				}
				return
			}
			near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }
			if o.Held != tc.held || !near(o.Value, tc.value) || !near(o.Bound, tc.bound) || !near(o.Ratio, tc.ratio) || o.Missing != "" {
				t.Errorf("got held %v, value %v, bound %v, ratio %v (%s); want %v, %v, %v, %v", o.Held, o.Value, o.Bound, o.Ratio, o.Missing, tc.held, tc.value, tc.bound, tc.ratio)
			}
			if !strings.Contains(o.Detail, tc.detailHas) {
				t.Errorf("detail: got %q, want %q in it", o.Detail, tc.detailHas)
			}
		})
	}
}

func TestWriteRepository(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	model := filepath.Join(dir, "model.onnx")
	if err := os.WriteFile(model, []byte("onnx"), 0o644); err != nil {
		t.Fatal(err)
	}
	repo := filepath.Join(dir, "repo")
	for range 2 { // again over the first: laid anew
		if _, err := writeRepository(repo, "m", model, "max_batch_size: 64\n"); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(filepath.Join(repo, "m", "1", "model.onnx"))
	if err != nil || string(got) != "onnx" {
		t.Errorf("model: got %q, %v", got, err)
	}
	if fi, err := os.Lstat(filepath.Join(repo, "m", "1", "model.onnx")); err != nil || fi.Mode()&os.ModeSymlink != 0 {
		t.Errorf("model is a symbolic link or missing: %v", err)
	}
	cfg, _ := os.ReadFile(filepath.Join(repo, "m", "config.yaml"))
	if string(cfg) != "max_batch_size: 64\n" {
		t.Errorf("config: got %q", cfg)
	}
}

func TestSortResults(t *testing.T) {
	t.Parallel()
	rs := []*load.Result{
		{Label: "external", Concurrency: 1}, {Label: ServerHandwritten, Concurrency: 4}, {Label: ServerHandwritten, Concurrency: 1},
		{Label: ServerONNXRuntime, Rows: 64, Concurrency: 1}, {Label: ServerONNXRuntime, Rows: 1, Concurrency: 2}, {Label: ServerTransport, Concurrency: 1},
	}
	sortResults(rs)
	var got []string
	for _, r := range rs {
		got = append(got, fmt.Sprintf("%s/%d/%d", r.Label, r.Rows, r.Concurrency))
	}
	want := "onnxruntime/1/2 onnxruntime/64/1 transport/0/1 handwritten/0/1 handwritten/0/4 external/0/1"
	if strings.Join(got, " ") != want {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestOptionsDefaults(t *testing.T) {
	t.Parallel()
	if _, err := (Options{Work: "w"}).withDefaults(); err == nil {
		t.Error("no ONNX Runtime library: got no error")
	}
	o, err := (Options{Work: "w", ONNXRuntimeLib: "lib.so", Self: "bench"}).withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if o.Infergate != filepath.Join("bin", "infergate") || o.Load.Window != 500*time.Millisecond || o.Load.MaxWindows != 6 {
		t.Errorf("got %+v", o)
	}
}

func TestRandomInputs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc   string
		infos  []runtime.TensorInfo
		shapes map[string][]int64
		batch  int
		want   string
		err    string
	}{
		{desc: "batch axis", infos: []runtime.TensorInfo{{Name: "x", DataType: runtime.FP32, Shape: []int64{-1, 16}}}, batch: 4, want: "[4 16]"},
		{desc: "image", infos: []runtime.TensorInfo{{Name: "x", DataType: runtime.FP32, Shape: []int64{-1, 3, -1, -1}}}, shapes: map[string][]int64{"x": {1, 3, 48, 192}}, batch: 2, want: "[2 3 48 192]"},
		{desc: "no batch axis", infos: []runtime.TensorInfo{{Name: "x", DataType: runtime.FP32, Shape: []int64{3}}}, batch: 8, want: "[3]"},
		{desc: "variable and not given", infos: []runtime.TensorInfo{{Name: "x", DataType: runtime.FP32, Shape: []int64{-1, -1}}}, batch: 1, err: "give its shape"},
		{desc: "not FP32", infos: []runtime.TensorInfo{{Name: "x", DataType: runtime.Int64, Shape: []int64{-1, 2}}}, batch: 1, err: "FP32 inputs only"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			got, err := randomInputs(tc.infos, tc.batch, tc.shapes)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("got %v, want an error with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got[0].Shape) != tc.want || got[0].Validate() != nil {
				t.Errorf("got shape %v (%v), want %s", got[0].Shape, got[0].Validate(), tc.want)
			}
		})
	}
}
