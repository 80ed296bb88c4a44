package monitoring

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/infergate/infergate/monitoring/monitoringtest"
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

func TestRulesPromtool(t *testing.T) {
	root := findRepoRoot(t)
	promtool := monitoringtest.Tool(t, "promtool")
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
			got, err := monitoringtest.DashboardMetricNames(b)
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
			got, err := monitoringtest.DashboardMetricNames([]byte(tt.json))
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
	"infergate_route_decisions_total",
	"infergate_breaker_state",
	"infergate_fallbacks_total",
	"infergate_rollout_weight",
	"infergate_rollout_phase",
	"infergate_shadow_requests_total",
	"infergate_shadow_divergence",
	"infergate_shadow_disagreements_total",
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

	names, err := monitoringtest.DashboardMetricNames(b)
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
