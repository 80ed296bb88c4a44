package load

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
)

// WriteJSON writes results as an indented JSON array.
func WriteJSON(w io.Writer, results []*Result) error {
	if results == nil {
		results = []*Result{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(results); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}

// CSVHeader is the first row WriteCSV writes.
var CSVHeader = []string{
	"scenario", "label", "url", "model", "protocol", "mode", "concurrency", "rate", "rows",
	"requests", "ok", "non_2xx", "errors", "seconds", "throughput", "items_per_sec",
	"min_us", "mean_us", "p50_us", "p90_us", "p95_us", "p99_us", "p999_us", "max_us", "stable", "windows",
}

// WriteCSV writes results as CSV with CSVHeader, one row a result; the
// non_2xx column lists the statuses as "503×12 429×3".
func WriteCSV(w io.Writer, results []*Result) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	f := func(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }
	for _, r := range results {
		l := r.Latency
		row := []string{
			r.Scenario, r.Label, r.URL, r.Model, r.Protocol, r.Mode, strconv.Itoa(r.Concurrency), f(r.Rate), strconv.Itoa(r.Rows),
			strconv.FormatInt(r.Requests, 10), strconv.FormatInt(r.OK, 10), r.StatusSummary(), strconv.FormatInt(r.Errors, 10),
			f(r.Seconds), f(roundTo(r.Throughput, 1)), f(roundTo(r.ItemsPerSec, 1)),
			f(l.Min), f(l.Mean), f(l.P50), f(l.P90), f(l.P95), f(l.P99), f(l.P999), f(l.Max),
			strconv.FormatBool(r.Stable), strconv.Itoa(r.Windows),
		}
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("write csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return nil
}

// roundTo rounds x to decimals places.
func roundTo(x float64, decimals int) float64 {
	p := 1.0
	for range decimals {
		p *= 10
	}
	return float64(int64(x*p+0.5)) / p
}

// WriteTable writes results as an aligned text table for a terminal.
func WriteTable(w io.Writer, results []*Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "label\tload\treq/s\titems/s\tp50\tp90\tp99\tp99.9\tmax\tok\tfailed\trefused p50/p99\tstable\t")
	for _, r := range results {
		ld := fmt.Sprintf("c%d", r.Concurrency)
		if r.Mode != "closed" {
			ld = fmt.Sprintf("%s %s/s", r.Mode, SI(r.Rate))
		}
		failed := strconv.FormatInt(r.Failed(), 10)
		if s := r.StatusSummary(); s != "" {
			failed += " (" + s + ")"
		}
		l := r.Latency
		refused := "-"
		if r.Refused != nil {
			refused = Micros(r.Refused.P50) + "/" + Micros(r.Refused.P99)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%v\t\n", r.Label, ld, SI(r.Throughput), SI(r.ItemsPerSec),
			Micros(l.P50), Micros(l.P90), Micros(l.P99), Micros(l.P999), Micros(l.Max), r.OK, failed, refused, r.Stable)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}
