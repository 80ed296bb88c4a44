// Package report writes a benchmark suite's results: a markdown report
// with the machine, the targets and one table per scenario, PNG plots
// (throughput against p99 latency; latency CDF), and the raw figures as
// JSON and CSV. It only formats what package suite measured and must never
// run or judge anything itself.
package report

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/infergate/infergate/benchmarks/load"
	"github.com/infergate/infergate/benchmarks/suite"
)

// The files Write writes under its folder.
const (
	MarkdownFile = "report.md"
	JSONFile     = "results.json"
	CSVFile      = "results.csv"
	PlotsDir     = "plots"
)

// Write writes the report, the plots and the figures under dir.
func Write(dir string, res *suite.Results) error {
	if err := os.MkdirAll(filepath.Join(dir, PlotsDir), 0o755); err != nil {
		return err
	}
	for _, sr := range res.Scenarios {
		if err := ThroughputPlot(filepath.Join(dir, PlotsDir, sr.Name+"-throughput-p99.png"), sr); err != nil {
			return fmt.Errorf("plot %s: %w", sr.Name, err)
		}
		if err := CDFPlot(filepath.Join(dir, PlotsDir, sr.Name+"-cdf.png"), sr); err != nil {
			return fmt.Errorf("plot %s: %w", sr.Name, err)
		}
	}
	var all []*load.Result
	for _, sr := range res.Scenarios {
		for _, r := range sr.Results {
			r.Scenario = sr.Name
			all = append(all, r)
		}
	}
	files := []struct {
		name  string
		write func(io.Writer) error
	}{
		{MarkdownFile, func(w io.Writer) error { return Markdown(w, res) }},
		{JSONFile, func(w io.Writer) error { return writeJSON(w, res) }},
		{CSVFile, func(w io.Writer) error { return load.WriteCSV(w, all) }},
	}
	for _, f := range files {
		if err := writeFile(filepath.Join(dir, f.name), f.write); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// Markdown writes the report.
func Markdown(w io.Writer, res *suite.Results) error {
	var b strings.Builder
	m := res.Machine
	fmt.Fprintf(&b, "# infergate benchmarks, %s\n\n", res.Date.Format("2006-01-02"))
	fmt.Fprintf(&b, "Written by `make bench` (`infergate-bench suite`) in %s.\n\n", (time.Duration(res.Elapsed * float64(time.Second))).Round(time.Second))
	b.WriteString("| machine | |\n|---|---|\n")
	fmt.Fprintf(&b, "| cores | %d |\n| CPU | %s |\n| OS | %s", m.Cores, m.CPU, m.OS)
	if m.Kernel != "" {
		fmt.Fprintf(&b, ", kernel %s", m.Kernel)
	}
	fmt.Fprintf(&b, " |\n| Go | %s |\n| ONNX Runtime | %s |\n| infergate | %s |\n", m.Go, orUnknown(m.ONNXRuntime), orUnknown(m.Infergate))
	if m.LoadBefore != "" {
		fmt.Fprintf(&b, "| load average (1, 5, 15 min) | %s before, %s after |\n", m.LoadBefore, orUnknown(m.LoadAfter))
	}
	b.WriteString("\n")

	s := res.Settings
	fmt.Fprintf(&b, "ONNX Runtime in-process runs first, alone. Then each server runs as its own process, measured one at a time but interleaved "+
		"(every server at one concurrency level, then every server at the next, the order reversed every other level), so that background load on a shared machine falls on all alike. "+
		"The load generator (a fasthttp client in the suite's process) shares the same cores: the figures are what a client on this machine sees. "+
		"Closed loop: each of *c* connections sends its next request when the last is answered. "+
		"Every run starts with a warm-up window of %d ms, then measures windows of %d ms until %d in a row agree within %.0f%% on throughput and p50 (at most %d); "+
		"the figures merge those last %d windows (HDR histograms, 2xx answers only; non-2xx answers and errors are counted apart). "+
		"`stable` says whether they agreed. Latency is per request; items/s counts batch rows.\n\n",
		s.WindowMS, s.WindowMS, s.StableWindows, 100*s.Stability, s.MaxWindows, s.StableWindows)
	b.WriteString("GOMAXPROCS:")
	for _, k := range append(append([]string{}, suite.Servers...), "load generator") {
		if v, ok := s.GOMAXPROCS[k]; ok {
			fmt.Fprintf(&b, " %s, %s;", k, v)
		}
	}
	b.WriteString("\n\n")

	b.WriteString("## Targets\n\n| scenario | target | measured | bound | ratio | |\n|---|---|---|---|---|---|\n")
	for _, sr := range res.Scenarios {
		for _, o := range sr.Targets {
			verdict := "holds"
			if !o.Held {
				verdict = "**missed**"
			}
			if o.Missing != "" {
				fmt.Fprintf(&b, "| %s | %s | | | | not judged: %s |\n", sr.Name, o.Name, o.Missing)
				continue
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s %s | %.2f× | %s |\n", sr.Name, o.Name, unit(o.Metric, o.Value), o.Op, unit(o.Metric, o.Bound), o.Ratio, verdict)
		}
	}
	b.WriteString("\nEach target in full:\n\n")
	for _, sr := range res.Scenarios {
		for _, o := range sr.Targets {
			if o.Missing == "" {
				fmt.Fprintf(&b, "- %s, %s: %s.\n", sr.Name, o.Name, o.Detail)
			}
		}
	}
	b.WriteString("\n")

	for _, sr := range res.Scenarios {
		fmt.Fprintf(&b, "## %s\n\n", sr.Name)
		if sr.Desc != "" {
			fmt.Fprintf(&b, "%s\n\n", sr.Desc)
		}
		fmt.Fprintf(&b, "![throughput against p99](%s/%s-throughput-p99.png)\n![latency CDF](%s/%s-cdf.png)\n\n", PlotsDir, sr.Name, PlotsDir, sr.Name)
		b.WriteString("| server | c | rows | req/s | items/s | p50 | p90 | p99 | p99.9 | max | p99/p50 | rows/run | failed | stable |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n")
		for _, r := range sr.Results {
			failed := fmt.Sprint(r.Failed())
			if st := r.StatusSummary(); st != "" {
				failed += " (" + st + ")"
			}
			l := r.Latency
			c := fmt.Sprint(r.Concurrency)
			if r.Mode == "poisson" {
				c = "Poisson " + load.SI(r.Rate) + "/s"
			}
			tail, rows := "", ""
			if l.P50 > 0 {
				tail = fmt.Sprintf("%.1f", l.P99/l.P50)
			}
			if r.RowsPerExecution > 0 {
				rows = fmt.Sprintf("%.1f", r.RowsPerExecution)
			}
			fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %v |\n", r.Label, c, r.Rows,
				load.SI(r.Throughput), load.SI(r.ItemsPerSec), load.Micros(l.P50), load.Micros(l.P90), load.Micros(l.P99), load.Micros(l.P999), load.Micros(l.Max), tail, rows, failed, r.Stable)
		}
		b.WriteString("\n")
		for _, p := range sr.Problems {
			fmt.Fprintf(&b, "- not measured: %s\n", p)
		}
		if len(sr.Problems) > 0 {
			b.WriteString("\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func unit(metric string, v float64) string {
	switch metric {
	case suite.MetricThroughput:
		return load.SI(v) + " req/s"
	case suite.MetricItems:
		return load.SI(v) + " items/s"
	}
	return load.Micros(v)
}
