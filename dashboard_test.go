package caddysession

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// dashboardFile is the Grafana dashboard of the plugin's metrics.
const dashboardFile = "contrib/grafana/caddy-session.json"

// describedMetrics returns the names of the series the plugin's
// collectors describe: a histogram's with its _bucket, _sum and _count.
func describedMetrics(t *testing.T) []string {
	t.Helper()
	ch := make(chan *prometheus.Desc, 64)
	go func() {
		for _, c := range metricCollectors() {
			c.Describe(ch)
		}
		close(ch)
	}()
	// A Desc shows its name only in its String: Desc{fqName: "...", ...}.
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	var names []string
	for d := range ch {
		m := fqName.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("no name in %s", d)
		}
		names = append(names, m[1])
	}
	for _, name := range slices.Clone(names) {
		if strings.HasSuffix(name, "_seconds") {
			names = append(names, name+"_bucket", name+"_sum", name+"_count")
		}
	}
	return names
}

// promqlWords are the words of PromQL that are no metric: functions,
// aggregations and keywords the dashboard may use.
var promqlWords = []string{
	"sum", "min", "max", "avg", "count", "topk", "bottomk", "quantile", "stddev",
	"rate", "irate", "increase", "delta", "histogram_quantile", "clamp_min", "clamp_max",
	"sum_over_time", "avg_over_time", "max_over_time", "abs", "vector", "scalar", "time",
	"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "bool",
}

var (
	promqlStrings   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promqlMatchers  = regexp.MustCompile(`\{[^}]*\}`)
	promqlRanges    = regexp.MustCompile(`\[[^\]]*\]`)
	promqlGroupings = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promqlVariables = regexp.MustCompile(`\$\{?\w+\}?`)
	promqlWord      = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	labelValues     = regexp.MustCompile(`^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,`)
)

// queriedMetrics returns the metric names a PromQL expression selects:
// every word left once strings, label matchers, ranges, groupings and
// Grafana's variables are taken out, and that is no PromQL word. A word
// this does not know is taken for a metric, so that a misspelled metric
// or function fails the test rather than pass unseen.
func queriedMetrics(expr string) []string {
	s := promqlStrings.ReplaceAllString(expr, "")
	s = promqlMatchers.ReplaceAllString(s, " ")
	s = promqlRanges.ReplaceAllString(s, " ")
	s = promqlGroupings.ReplaceAllString(s, " ")
	s = promqlVariables.ReplaceAllString(s, " ")
	var names []string
	for _, w := range promqlWord.FindAllString(s, -1) {
		if !slices.Contains(promqlWords, w) && !slices.Contains(names, w) {
			names = append(names, w)
		}
	}
	return names
}

func TestQueriedMetrics(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{`sum by (store) (rate(caddy_session_created_total{store=~"$store"}[$__rate_interval]))`, []string{"caddy_session_created_total"}},
		{`histogram_quantile(0.99, sum by (le, operation) (rate(a_bucket{x="rate(b)"}[5m])))`, []string{"a_bucket"}},
		{`sum(rate(a_total[1m])) / sum(rate(b_count[1m]))`, []string{"a_total", "b_count"}},
		{`sum(rat(a_total[1m]))`, []string{"rat", "a_total"}},
	}
	for _, tc := range tests {
		if got := queriedMetrics(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("queriedMetrics(%s) = %v, want %v", tc.expr, got, tc.want)
		}
	}
}

// TestDashboardQueriesDescribedMetrics reads the Grafana dashboard and
// checks that every metric its panels and variables query is one the
// plugin's collectors describe, and that it shows each of them.
func TestDashboardQueriesDescribedMetrics(t *testing.T) {
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID        string  `json:"uid"`
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string          `json:"name"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if dash.UID == "" {
		t.Fatalf("%s has no uid: a re-import would make a copy", dashboardFile)
	}
	described := describedMetrics(t)
	queried := map[string]string{} // metric -> where
	var exprs int
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				exprs++
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("panel %q: target %s has no expression", p.Title, tg.RefID)
				}
				for _, m := range queriedMetrics(tg.Expr) {
					queried[m] = "panel " + p.Title
				}
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	for _, v := range dash.Templating.List {
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			continue // a data source variable: its query names a type
		}
		m := labelValues.FindStringSubmatch(q.Query)
		if m == nil {
			t.Errorf("variable %s: query %q is not label_values(<metric>, <label>)", v.Name, q.Query)
			continue
		}
		queried[m[1]] = "variable " + v.Name
	}
	if exprs == 0 {
		t.Fatal("the dashboard queries nothing")
	}
	for m, where := range queried {
		if !slices.Contains(described, m) {
			t.Errorf("%s queries %q, which no collector of the plugin describes (%s)", where, m, strings.Join(described, ", "))
		}
	}
	// Each metric is on the dashboard, a histogram by one of its series.
	for _, d := range described {
		if strings.HasSuffix(d, "_bucket") || strings.HasSuffix(d, "_sum") || strings.HasSuffix(d, "_count") {
			continue
		}
		found := false
		for m := range queried {
			if m == d || strings.HasPrefix(m, d+"_") {
				found = true
			}
		}
		if !found {
			t.Errorf("the dashboard shows nothing of %s", d)
		}
	}
}

// panel is a panel of the dashboard; a row holds panels of its own.
type panel struct {
	Title   string `json:"title"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}
