package report

import (
	"fmt"
	"image/color"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/infergate/infergate/benchmarks/load"
	"github.com/infergate/infergate/benchmarks/suite"
)

// The plots' size.
const (
	plotWidth  = 7 * vg.Inch
	plotHeight = 4.5 * vg.Inch
)

// series groups a scenario's results by server, in report order.
func series(sr *suite.ScenarioResult) (labels []string, by map[string][]*load.Result) {
	by = map[string][]*load.Result{}
	for _, r := range sr.Results {
		if r.OK == 0 || r.Mode == "poisson" {
			continue // the plots are of the closed loops
		}
		key := r.Label
		if r.Label == suite.ServerONNXRuntime {
			key = fmt.Sprintf("%s batch %d", r.Label, r.Rows)
		}
		if _, ok := by[key]; !ok {
			labels = append(labels, key)
		}
		by[key] = append(by[key], r)
	}
	return labels, by
}

func lineColor(i int) color.Color { return plotutil.Color(i) }

// ThroughputPlot plots each server's items/s against its p99 latency, one
// point per concurrency level labelled c1, c4, ..., both axes logarithmic:
// up and to the left is worse, down and to the right better.
func ThroughputPlot(path string, sr *suite.ScenarioResult) error {
	p := plot.New()
	p.Title.Text = sr.Name + ": throughput against p99 latency"
	p.X.Label.Text = "items/s (log)"
	p.Y.Label.Text = "p99 latency (ms, log)"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.XOffs = vg.Points(4)
	p.Legend.YOffs = -vg.Points(4)
	p.Add(plotter.NewGrid())
	labels, by := series(sr)
	for i, label := range labels {
		rs := by[label]
		slices.SortFunc(rs, func(a, b *load.Result) int { return a.Concurrency - b.Concurrency })
		xys := make(plotter.XYs, len(rs))
		names := make([]string, len(rs))
		for j, r := range rs {
			xys[j] = plotter.XY{X: r.ItemsPerSec, Y: r.Latency.P99 / 1000}
			names[j] = fmt.Sprintf("c%d", r.Concurrency)
		}
		line, points, err := plotter.NewLinePoints(xys)
		if err != nil {
			return err
		}
		line.Color, points.Color = lineColor(i), lineColor(i)
		line.Width = vg.Points(1.5)
		points.Shape = plotutil.Shape(i)
		p.Add(line, points)
		p.Legend.Add(label, line, points)
		tags, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: names})
		if err != nil {
			return err
		}
		for k := range tags.TextStyle {
			tags.TextStyle[k].Color = lineColor(i)
			tags.TextStyle[k].XAlign = -0.5
		}
		p.Add(tags)
	}
	return p.Save(plotWidth, plotHeight, path)
}

// CDFPlot plots the latency distribution of each server at the scenario's
// CDF concurrency, and of ONNX Runtime in-process from one goroutine (the
// compute floor).
func CDFPlot(path string, sr *suite.ScenarioResult) error {
	c := 1
	if sr.Scenario != nil {
		c = sr.Scenario.CDFConcurrency
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s: latency distribution at concurrency %d", sr.Name, c)
	p.X.Label.Text = "latency (ms, log)"
	p.Y.Label.Text = "fraction of requests"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Min, p.Y.Max = 0, 1
	p.Legend.Top = false
	p.Legend.Left = false
	p.Legend.XOffs = -vg.Points(4)
	p.Legend.YOffs = vg.Points(4)
	p.Add(plotter.NewGrid())
	labels, by := series(sr)
	for i, label := range labels {
		var pick *load.Result
		for _, r := range by[label] {
			want := c
			if r.Label == suite.ServerONNXRuntime {
				want = 1
			}
			if r.Concurrency == want {
				pick = r
			}
		}
		if pick == nil || len(pick.CDF) == 0 {
			continue
		}
		xys := make(plotter.XYs, 0, len(pick.CDF))
		for _, pt := range pick.CDF {
			xys = append(xys, plotter.XY{X: max(pt.LatencyUS, 1) / 1000, Y: pt.Fraction})
		}
		line, err := plotter.NewLine(xys)
		if err != nil {
			return err
		}
		line.Color = lineColor(i)
		line.Width = vg.Points(1.5)
		line.Dashes = plotutil.Dashes(i)
		p.Add(line)
		name := fmt.Sprintf("%s c%d", label, pick.Concurrency)
		p.Legend.Add(name, line)
	}
	return p.Save(plotWidth, plotHeight, path)
}
