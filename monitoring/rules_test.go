package monitoring

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// findRepoRoot walks up from the working directory to go.mod, so that the
// configuration paths below read as they do from the repository root, where
// promtool is run by hand.
func findRepoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// findPromtool fails rather than skips: the rules are only as good as their
// tests, and a missing promtool would pass them silently.
func findPromtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is not on PATH: install Debian's prometheus package (apt-get install prometheus; make deps does it)")
	}
	return path
}

func TestRulesPromtool(t *testing.T) {
	root := findRepoRoot(t)
	promtool := findPromtool(t)
	tests := []struct {
		name string
		args []string
	}{
		{"check config", []string{"check", "config", "configs/prometheus/prometheus.yml"}},
		{"check recording rules", []string{"check", "rules", "configs/prometheus/rules/recording.yml"}},
		{"check alerting rules", []string{"check", "rules", "configs/prometheus/rules/alerts.yml"}},
	}
	unitTests, err := filepath.Glob(filepath.Join(root, "configs", "prometheus", "tests", "*.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(unitTests) == 0 {
		t.Fatal("no rule unit tests in configs/prometheus/tests")
	}
	for _, file := range unitTests {
		rel, err := filepath.Rel(root, file)
		if err != nil {
			t.Fatal(err)
		}
		tests = append(tests, struct {
			name string
			args []string
		}{"test " + filepath.Base(file), []string{"test", "rules", rel}})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), promtool, tt.args...)
			cmd.Dir = root
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("promtool %s: %v\n%s", strings.Join(tt.args, " "), err, out)
			}
		})
	}
}

func TestDashboardMetricNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		expr string
		want []string
	}{
		{"bare name", `up`, []string{"up"}},
		{
			"matchers, template variables and range",
			`rate(infergate_requests_total{model=~"$model", version=~"${version}", code=~"5..|Internal"}[$__rate_interval])`,
			[]string{"infergate_requests_total"},
		},
		{
			"histogram buckets with a by clause",
			`histogram_quantile(0.99, sum by (model, version, le) (rate(infergate_request_duration_seconds_bucket{model="a"}[5m])))`,
			[]string{"infergate_request_duration_seconds"},
		},
		{
			"sum and count without spaces",
			`rate(infergate_batch_size_sum[5m])/rate(infergate_batch_size_count[5m])`,
			[]string{"infergate_batch_size"},
		},
		{
			"by after the aggregation",
			`sum(rate(infergate_sent_bytes_total[1h:5m])) without (protocol)`,
			[]string{"infergate_sent_bytes_total"},
		},
		{
			"vector matching",
			`infergate_queue_depth / on (model, version) group_left (instance) (infergate_queue_capacity > 0)`,
			[]string{"infergate_queue_capacity", "infergate_queue_depth"},
		},
		{
			"keywords in any case, offset and numbers",
			`infergate_inflight_requests > bool 1e3 AND infergate_resident_versions offset 5m unless up @ end() or 0x1f < +Inf`,
			[]string{"infergate_inflight_requests", "infergate_resident_versions", "up"},
		},
		{
			"strings and comments",
			"label_replace(infergate_drift_score{statistic!=\"p_value\"}, \"dst\", \"$1\", \"src\", \"(.*)\") # or not_a_metric\n* on() group_left vector(1)",
			[]string{"infergate_drift_score"},
		},
		{
			"escaped quote in a string",
			`infergate_rejected_total{reason="a\"b{c"} and infergate_coalesced_total`,
			[]string{"infergate_coalesced_total", "infergate_rejected_total"},
		},
		{
			"recording rule name",
			`model_version:infergate_requests:rate5m`,
			[]string{"model_version:infergate_requests:rate5m"},
		},
		{
			"repeats",
			`infergate_model_loads_total{result="failure"} / infergate_model_loads_total`,
			[]string{"infergate_model_loads_total"},
		},
		{"no metric", `vector(1) + scalar(time())`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := json.Marshal(map[string]any{"panels": []any{
				map[string]any{"targets": []any{map[string]string{"expr": tt.expr}}},
			}})
			if err != nil {
				t.Fatal(err)
			}
			got, err := dashboardMetricNames(b)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDashboardMetricNamesPanels(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		json    string
		want    []string
		wantErr bool
	}{
		{
			"top level, expanded and collapsed rows",
			`{"panels": [
				{"type": "row", "panels": []},
				{"type": "timeseries", "targets": [{"expr": "a"}, {"expr": "b_count"}]},
				{"type": "row", "collapsed": true, "panels": [
					{"type": "stat", "targets": [{"expr": "c_bucket"}]}
				]}
			]}`,
			[]string{"a", "b", "c"},
			false,
		},
		{"target without expr", `{"panels": [{"targets": [{"refId": "A"}]}]}`, nil, false},
		{"no panels", `{}`, nil, false},
		{"not json", `{"panels": [`, nil, true},
		{"panels not a list", `{"panels": {}}`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := dashboardMetricNames([]byte(tt.json))
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error: %v", err, tt.wantErr)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// dashboardFamilies are the families infergate exports that the dashboard
// may read. The end-to-end test in cmd/infergate checks the dashboard
// against a live scrape; this list catches a misspelt name where that test
// cannot run (no ONNX Runtime). A new family goes here when a panel uses it.
var dashboardFamilies = []string{
	"infergate_requests_total",
	"infergate_request_duration_seconds",
	"infergate_queue_duration_seconds",
	"infergate_compute_duration_seconds",
	"infergate_batch_size",
	"infergate_queue_depth",
	"infergate_queue_capacity",
	"infergate_inflight_requests",
	"infergate_rejected_total",
	"infergate_received_bytes_total",
	"infergate_sent_bytes_total",
	"infergate_model_loads_total",
	"infergate_model_load_duration_seconds",
	"infergate_model_unloads_total",
	"infergate_resident_versions",
	"infergate_cache_lookups_total",
	"infergate_coalesced_total",
	"infergate_drift_score",
	"infergate_drift_detected",
	"infergate_drift_window_samples",
	"infergate_drift_dropped_total",
}

func TestDashboardShipped(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(findRepoRoot(t), "configs", "grafana", "infergate.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		SchemaVersion int `json:"schemaVersion"`
		Templating    struct {
			List []struct {
				Name string `json:"name"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	if dash.SchemaVersion < 39 {
		t.Errorf("got schemaVersion %d, want 39 or later", dash.SchemaVersion)
	}
	var vars []string
	for _, v := range dash.Templating.List {
		vars = append(vars, v.Name)
	}
	if want := []string{"datasource", "model", "version"}; !slices.Equal(vars, want) {
		t.Errorf("got template variables %q, want %q", vars, want)
	}

	names, err := dashboardMetricNames(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatal("got no metric names from the dashboard's queries")
	}
	for _, name := range names {
		if name != "up" && !strings.HasPrefix(name, "infergate_") {
			t.Errorf("dashboard reads %q, want only infergate_ families or up (recording rules are not loaded everywhere)", name)
			continue
		}
		if name != "up" && !slices.Contains(dashboardFamilies, name) {
			t.Errorf("dashboard reads %q, not a family infergate exports", name)
		}
	}
}

// dashboardMetricNames returns, sorted and once each, the metric families
// read by the PromQL queries (targets[].expr) of a Grafana dashboard's
// panels, those nested in collapsed rows included. The _bucket, _sum and
// _count series of a classic histogram map back to the histogram's family,
// so that each name can be looked up among the families of a scrape.
//
// It scans rather than parses PromQL: strings, comments, label matchers,
// range and subquery brackets, the label lists of by, without, on,
// ignoring, group_left and group_right, and template variables ($x, ${x})
// are blanked first; then every identifier is a metric name unless it is
// called (followed by "("), is an aggregation operator or a keyword, or is
// the tail of a number or duration (1e3, 5m). A name given only as
// {__name__="..."} goes unseen.
func dashboardMetricNames(dashboardJSON []byte) ([]string, error) {
	type panel struct {
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
		Panels []panel `json:"panels"`
	}
	var dash struct {
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(dashboardJSON, &dash); err != nil {
		return nil, fmt.Errorf("parse dashboard: %w", err)
	}

	variable := regexp.MustCompile(`\$\{[^}]*\}|\$[a-zA-Z0-9_]+|\[\[[^\]]*\]\]`)
	grouping := regexp.MustCompile(`(?i)(^|[^a-zA-Z0-9_:])(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	identifier := regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	notMetric := map[string]bool{
		"by": true, "without": true, "on": true, "ignoring": true,
		"group_left": true, "group_right": true, "bool": true,
		"and": true, "or": true, "unless": true, "atan2": true, "offset": true,
		"inf": true, "nan": true,
		// Aggregations may stand apart from their "(" behind a by clause.
		"sum": true, "avg": true, "min": true, "max": true, "count": true,
		"group": true, "stddev": true, "stdvar": true, "topk": true,
		"bottomk": true, "quantile": true, "count_values": true,
		"limitk": true, "limit_ratio": true,
	}

	// blank turns strings, comments and the insides of {} and [] into
	// spaces, keeping every other byte where it was.
	blank := func(expr string) string {
		b := []byte(variable.ReplaceAllString(expr, " "))
		var quote, closer byte
		for i := 0; i < len(b); i++ {
			c := b[i]
			switch {
			case quote != 0:
				if c == '\\' && quote != '`' && i+1 < len(b) {
					b[i], b[i+1] = ' ', ' '
					i++
					continue
				}
				if c == quote {
					quote = 0
				}
				b[i] = ' '
			case c == '"' || c == '\'' || c == '`':
				quote = c
				b[i] = ' '
			case c == '#' && closer == 0:
				for ; i < len(b) && b[i] != '\n'; i++ {
					b[i] = ' '
				}
			case closer != 0:
				if c == closer {
					closer = 0
				} else {
					b[i] = ' '
				}
			case c == '{':
				closer = '}'
			case c == '[':
				closer = ']'
			}
		}
		return grouping.ReplaceAllString(string(b), "${1}${2} ")
	}

	seen := map[string]bool{}
	var walk func([]panel)
	walk = func(panels []panel) {
		for _, p := range panels {
			for _, target := range p.Targets {
				s := blank(target.Expr)
				for _, loc := range identifier.FindAllStringIndex(s, -1) {
					start, end := loc[0], loc[1]
					if start > 0 && strings.IndexByte("0123456789.", s[start-1]) >= 0 {
						continue
					}
					if next := strings.TrimLeft(s[end:], " \t\r\n"); strings.HasPrefix(next, "(") {
						continue
					}
					name := s[start:end]
					if notMetric[strings.ToLower(name)] {
						continue
					}
					for _, suffix := range []string{"_bucket", "_sum", "_count"} {
						if trimmed, ok := strings.CutSuffix(name, suffix); ok {
							name = trimmed
							break
						}
					}
					seen[name] = true
				}
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)

	var names []string
	for name := range seen {
		names = append(names, name)
	}
	sort.Strings(names)
	return names, nil
}
