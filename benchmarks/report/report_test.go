package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/infergate/infergate/benchmarks/load"
	"github.com/infergate/infergate/benchmarks/suite"
)

func fakeResults(t *testing.T) *suite.Results {
	t.Helper()
	sc, err := suite.ParseScenario([]byte("name: mlp_256\nmodel: {name: mlp_256, path: x.onnx}\nconcurrency: [1, 64]\n"))
	if err != nil {
		t.Fatal(err)
	}
	cdf := []load.CDFPoint{{LatencyUS: 10, Fraction: 0}, {LatencyUS: 50, Fraction: 0.5}, {LatencyUS: 400, Fraction: 1}}
	r := func(label string, c, rows int, tput, p50, p99 float64) *load.Result {
		return &load.Result{Label: label, Mode: "closed", Concurrency: c, Rows: rows, OK: 1000, Requests: 1003, Non2xx: map[string]int64{"503": 3},
			Throughput: tput, ItemsPerSec: tput * float64(rows), Latency: load.Latency{P50: p50, P99: p99, Max: 2 * p99}, Stable: true, CDF: cdf}
	}
	sr := &suite.ScenarioResult{Scenario: sc, Name: sc.Name, Desc: "256→512→512→10 MLP", Results: []*load.Result{
		r(suite.ServerONNXRuntime, 1, 1, 20000, 35, 150),
		r(suite.ServerONNXRuntime, 1, 64, 2300, 370, 1200),
		r(suite.ServerTransport, 1, 1, 54000, 16, 36),
		r(suite.ServerTransport, 64, 1, 60000, 900, 2700),
		r(suite.ServerInfergateBatching, 1, 1, 7000, 120, 300),
		r(suite.ServerInfergateBatching, 64, 1, 9000, 7000, 30000),
	}, Problems: []string{"handwritten: did not start"}}
	sr.Targets = []suite.Outcome{
		suite.Evaluate(sc.Name, suite.Target{Name: "c64: 80% of transport", Op: ">=", Factor: 0.8,
			Measure: suite.Point{Server: suite.ServerInfergateBatching, Concurrency: 64, Metric: suite.MetricThroughput},
			Of:      []suite.Point{{Server: suite.ServerTransport, Concurrency: 64, Metric: suite.MetricThroughput}}}, sr.Results),
		suite.Evaluate(sc.Name, suite.Target{Name: "c64: 3× handwritten", Op: ">=", Factor: 3,
			Measure: suite.Point{Server: suite.ServerInfergateBatching, Concurrency: 64, Metric: suite.MetricThroughput},
			Of:      []suite.Point{{Server: suite.ServerHandwritten, Concurrency: 64, Metric: suite.MetricThroughput}}}, sr.Results),
	}
	return &suite.Results{
		Date:      time.Date(2026, 11, 28, 15, 0, 0, 0, time.UTC),
		Machine:   suite.Machine{Cores: 2, CPU: "Test CPU", OS: "linux/amd64", Go: "go1.26.8", ONNXRuntime: "1.29.0", Infergate: "dev"},
		Settings:  suite.Settings{WindowMS: 500, StableWindows: 3, MaxWindows: 6, Stability: 0.1, GOMAXPROCS: map[string]string{suite.ServerInfergate: "2 per core"}},
		Scenarios: []*suite.ScenarioResult{sr},
		Elapsed:   123.4,
	}
}

func TestMarkdown(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := Markdown(&b, fakeResults(t)); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"# infergate benchmarks, 2026-11-28",
		"in 2m3s",
		"| cores | 2 |", "| CPU | Test CPU |", "| ONNX Runtime | 1.29.0 |",
		"GOMAXPROCS: infergate, 2 per core;",
		"| mlp_256 | c64: 80% of transport | 9.00k req/s | >= 48.0k req/s | 0.15× | **missed** |",
		"| mlp_256 | c64: 3× handwritten | | | | not judged: no successful run of handwritten c64 |",
		"![throughput against p99](plots/mlp_256-throughput-p99.png)",
		"| infergate-batching | 64 | 1 | 9.00k | 9.00k | 7.00ms |",
		"| onnxruntime | 1 | 64 | 2.30k | 147k |",
		"3 (503×3)",
		"- not measured: handwritten: did not start",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

func TestWrite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := Write(dir, fakeResults(t)); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{MarkdownFile, JSONFile, CSVFile, "plots/mlp_256-throughput-p99.png", "plots/mlp_256-cdf.png"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(name, ".png") && !bytes.HasPrefix(b, []byte("\x89PNG")) {
			t.Errorf("%s is not a PNG", name)
		}
	}
	var back suite.Results
	b, _ := os.ReadFile(filepath.Join(dir, JSONFile))
	if err := json.Unmarshal(b, &back); err != nil || len(back.Scenarios) != 1 || len(back.Scenarios[0].Results) != 6 || back.Machine.Cores != 2 {
		t.Errorf("json: got %+v, %v", back, err)
	}
	f, _ := os.Open(filepath.Join(dir, CSVFile))
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) != 7 || rows[1][0] != "mlp_256" {
		t.Errorf("csv: got %d rows (%v), first %v", len(rows), err, rows[1])
	}
}
