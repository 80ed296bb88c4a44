package suite

import (
	"cmp"
	"fmt"
	"strings"

	"github.com/infergate/infergate/benchmarks/load"
)

// Outcome is a target judged against a scenario's results.
type Outcome struct {
	Scenario string `json:"scenario"`
	Name     string `json:"name"`
	// Held is false when the target is missed or could not be judged
	// (Missing says why).
	Held bool `json:"held"`
	// Value is the measure; Bound what it is compared with (factor × the
	// references' sum + plus), with Op.
	Value float64 `json:"value"`
	Op    string  `json:"op"`
	Bound float64 `json:"bound"`
	// Ratio is Value over the references' sum: the ratio the README quotes.
	// (For a composite, over the composite.)
	Ratio  float64 `json:"ratio"`
	Metric string  `json:"metric"`
	// Detail lists every point with its figure.
	Detail  string `json:"detail"`
	Missing string `json:"missing,omitempty"`
}

// Evaluate judges t against the results of scenario.
func Evaluate(scenario string, t Target, results []*load.Result) Outcome {
	o := Outcome{Scenario: scenario, Name: t.Name, Op: t.Op, Metric: t.Measure.Metric}
	v, r, err := pointValue(t.Measure, results)
	if err != nil {
		o.Missing = err.Error()
		return o
	}
	o.Value = v
	parts := []string{describe(t.Measure, r, v)}
	var sum, inverse float64
	var refs []string
	for _, p := range t.Of {
		rv, rr, err := pointValue(p, results)
		if err != nil {
			o.Missing = err.Error()
			return o
		}
		sum += rv
		inverse += 1 / rv
		refs = append(refs, describe(p, rr, rv))
	}
	sep := " + "
	if t.Combine == CombineComposite {
		sum, sep = 1/inverse, ", "
	}
	o.Bound = t.Factor*sum + t.Plus
	if sum != 0 {
		o.Ratio = v / sum
	}
	if t.Op == ">=" {
		o.Held = v >= o.Bound
	} else {
		o.Held = v <= o.Bound
	}
	bound := fmt.Sprintf("%g × (%s)", t.Factor, strings.Join(refs, sep))
	if t.Combine == CombineComposite {
		bound = fmt.Sprintf("%g × composite(%s)", t.Factor, strings.Join(refs, sep))
	}
	if t.Plus != 0 {
		bound += fmt.Sprintf(" + %s", format(t.Measure.Metric, t.Plus))
	}
	o.Detail = fmt.Sprintf("%s %s %s = %s", parts[0], t.Op, bound, format(t.Measure.Metric, o.Bound))
	return o
}

// pointValue finds the result p names and returns its metric. When several
// results match (onnxruntime at any concurrency), the one with the most
// items/s is taken.
func pointValue(p Point, results []*load.Result) (float64, *load.Result, error) {
	var best *load.Result
	for _, r := range results {
		if r.Label != p.Server && !(p.Server == ServerExternal && strings.HasPrefix(r.Label, ServerExternal)) {
			continue
		}
		if mode := cmp.Or(r.Mode, "closed"); mode != cmp.Or(p.Mode, "closed") {
			continue
		}
		if (p.Concurrency > 0 && r.Concurrency != p.Concurrency) || (p.Rows > 0 && r.Rows != p.Rows) {
			continue
		}
		if best == nil || r.ItemsPerSec > best.ItemsPerSec {
			best = r
		}
	}
	if best == nil || best.OK == 0 {
		return 0, nil, fmt.Errorf("no successful run of %s", pointName(p))
	}
	switch p.Metric {
	case MetricThroughput:
		return best.Throughput, best, nil
	case MetricItems:
		return best.ItemsPerSec, best, nil
	case MetricP50:
		return best.Latency.P50, best, nil
	case MetricP99:
		return best.Latency.P99, best, nil
	}
	return 0, nil, fmt.Errorf("unknown metric %q", p.Metric)
}

func pointName(p Point) string {
	s := p.Server
	if p.Concurrency > 0 {
		s += fmt.Sprintf(" c%d", p.Concurrency)
	}
	if p.Rows > 0 {
		s += fmt.Sprintf(" batch %d", p.Rows)
	}
	return s
}

// describe writes a point and its figure: "transport c64 31.2k req/s".
func describe(p Point, r *load.Result, v float64) string {
	s := fmt.Sprintf("%s c%d", r.Label, r.Concurrency)
	if r.Mode == "poisson" {
		s = fmt.Sprintf("%s poisson %s req/s", r.Label, load.SI(r.Rate))
	}
	if r.Label == ServerONNXRuntime {
		s += fmt.Sprintf(" batch %d", r.Rows)
	}
	return s + " " + format(p.Metric, v)
}

// format writes a metric's value with its unit.
func format(metric string, v float64) string {
	switch metric {
	case MetricThroughput:
		return load.SI(v) + " req/s"
	case MetricItems:
		return load.SI(v) + " items/s"
	}
	return load.Micros(v)
}
