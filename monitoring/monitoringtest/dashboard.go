// Package monitoringtest holds what the tests of the monitoring
// configuration share: finding Debian's prometheus and promtool, and
// reading the metric names out of the shipped Grafana dashboard's
// queries. It is for tests only.
package monitoringtest

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// DashboardMetricNames returns, sorted and once each, the metric families
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
func DashboardMetricNames(dashboardJSON []byte) ([]string, error) {
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

// Tool returns the path of one of Debian's prometheus package's programs
// ("promtool", "prometheus"), or fails the test: a missing tool must not
// pass the tests that need it silently.
func Tool(tb testing.TB, name string) string {
	tb.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		tb.Fatalf("%s is not on PATH: install Debian's prometheus package (apt-get install prometheus; make deps does it)", name)
	}
	return path
}
