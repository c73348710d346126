package deploy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/backplane/backplane/internal/dbtest"
)

var (
	rulesFile     = filepath.Join(chartDir, "files", "prometheus-rules.yaml")
	dashboardFile = filepath.Join(chartDir, "files", "dashboards", "backplane.json")
)

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record      string            `yaml:"record"`
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func readRules(t testing.TB) ruleFile {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	require.NoError(t, err)
	var rf ruleFile
	require.NoError(t, yaml.Unmarshal(b, &rf))
	return rf
}

func promtool(t testing.TB, args ...string) string {
	t.Helper()
	return run(t, tool(t, "promtool"), args...)
}

func TestAlertRulesPassPromtool(t *testing.T) {
	t.Parallel()
	out := promtool(t, "check", "rules", rulesFile)
	assert.Contains(t, out, "SUCCESS")
	// Each alert fires on the series the binary exports, and stays quiet on the traffic
	// it must ignore (testdata/alerts_test.yaml).
	out = promtool(t, "test", "rules", mustAbs("testdata/alerts_test.yaml"))
	assert.Contains(t, out, "SUCCESS")

	rf := readRules(t)
	tested, err := os.ReadFile(mustAbs("testdata/alerts_test.yaml"))
	require.NoError(t, err)
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			assert.Contains(t, string(tested), "alertname: "+r.Alert, "%s has no promtool test", r.Alert)
			assert.Contains(t, []string{"critical", "warning"}, r.Labels["severity"], r.Alert)
			assert.NotEmpty(t, r.Annotations["summary"], r.Alert)
			assert.NotEmpty(t, r.Annotations["description"], r.Alert)
		}
	}
}

func TestPrometheusRuleShipsTheCheckedRules(t *testing.T) {
	t.Parallel()
	rf := readRules(t)
	objs := render(t, "ci/prod-values.yaml")
	var pr struct {
		Spec ruleFile `yaml:"spec"`
	}
	prObj := find(t, objs, "PrometheusRule", "bp-backplane")
	prObj.decode(t, &pr)
	assert.Equal(t, "kube-prometheus-stack", prObj.Metadata.Labels["release"])
	require.Len(t, pr.Spec.Groups, len(rf.Groups))
	for i, g := range rf.Groups {
		require.Len(t, pr.Spec.Groups[i].Rules, len(g.Rules), g.Name)
		for j, r := range g.Rules {
			got := pr.Spec.Groups[i].Rules[j]
			assert.Equal(t, r.Expr, got.Expr, "%s%s", r.Alert, r.Record)
			assert.Equal(t, r.Annotations, got.Annotations, "annotations pass through Helm untouched")
			if r.Alert != "" {
				assert.Equal(t, "platform", got.Labels["team"], "alertLabels reach %s", r.Alert)
				assert.Equal(t, r.Labels["severity"], got.Labels["severity"], "alertLabels do not override %s's own", r.Alert)
			} else {
				assert.Empty(t, got.Labels, "recording rules take no alert labels")
			}
		}
	}

	// What ships is still valid for Prometheus.
	b, err := yaml.Marshal(pr.Spec)
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "shipped.yaml")
	require.NoError(t, os.WriteFile(file, b, 0o644))
	assert.Contains(t, promtool(t, "check", "rules", file), "SUCCESS")

	// An alert can be switched off.
	objs = render(t, "ci/prod-values.yaml", "metrics.prometheusRule.disabled={BackplaneHighLatency}")
	var text strings.Builder
	for _, o := range only(objs, "PrometheusRule") {
		var whole map[string]any
		o.decode(t, &whole)
		fmt.Fprint(&text, whole)
	}
	assert.NotContains(t, text.String(), "BackplaneHighLatency")
	assert.Contains(t, text.String(), "BackplaneHighErrorRate")
}

type dashboard struct {
	UID        string `json:"uid"`
	Templating struct {
		List []struct {
			Name string `json:"name"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID         int    `json:"id"`
		Type       string `json:"type"`
		Title      string `json:"title"`
		Datasource *struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

func readDashboard(t testing.TB) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	require.NoError(t, err)
	var d dashboard
	require.NoError(t, json.Unmarshal(b, &d))
	return d
}

func TestDashboardIsWellFormedAndShipped(t *testing.T) {
	t.Parallel()
	d := readDashboard(t)
	assert.NotEmpty(t, d.UID)
	var vars []string
	for _, v := range d.Templating.List {
		vars = append(vars, v.Name)
	}
	assert.Equal(t, []string{"datasource", "namespace", "piece"}, vars)
	ids := map[int]bool{}
	graphs := 0
	for _, p := range d.Panels {
		assert.False(t, ids[p.ID], "panel id %d twice", p.ID)
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		graphs++
		require.NotNil(t, p.Datasource, p.Title)
		assert.Equal(t, "${datasource}", p.Datasource.UID, "%s: the data source is chosen by the viewer", p.Title)
		require.NotEmpty(t, p.Targets, p.Title)
		for _, tg := range p.Targets {
			assert.NotEmpty(t, tg.Expr, p.Title)
		}
	}
	assert.GreaterOrEqual(t, graphs, 10)

	objs := render(t, "ci/prod-values.yaml")
	var cm configMap
	o := find(t, objs, "ConfigMap", "bp-backplane-dashboard")
	o.decode(t, &cm)
	assert.Equal(t, "1", o.Metadata.Labels["grafana_dashboard"], "Grafana's sidecar finds it by this label")
	b, err := os.ReadFile(dashboardFile)
	require.NoError(t, err)
	assert.JSONEq(t, string(b), cm.Data["backplane.json"])
}

// selector is a metric named in a PromQL expression, with the labels it matches on.
type selector struct {
	metric string
	labels []string
}

// promqlKeywords are the words of PromQL that are neither functions (always followed by
// a parenthesis) nor metrics.
var promqlKeywords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "inf": true, "nan": true,
}

// selectors reads the metric selectors of a PromQL expression: every name that is not a
// function, keyword, label, string, number or range, with the label names its {}
// matchers use. Enough PromQL for our rules and dashboard, not a parser.
func selectors(expr string) []selector {
	var out []selector
	isIdent := func(c byte, first bool) bool {
		return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (!first && c >= '0' && c <= '9')
	}
	skipSpace := func(i int) int {
		for i < len(expr) && (expr[i] == ' ' || expr[i] == '\n' || expr[i] == '\t') {
			i++
		}
		return i
	}
	// matchers returns the label names in a {...} starting at i, and the index after it.
	matchers := func(i int) ([]string, int) {
		var names []string
		i++
		for i < len(expr) && expr[i] != '}' {
			switch c := expr[i]; {
			case c == '"':
				i++
				for i < len(expr) && expr[i] != '"' {
					if expr[i] == '\\' {
						i++
					}
					i++
				}
				i++
			case isIdent(c, true):
				j := i
				for j < len(expr) && isIdent(expr[j], false) {
					j++
				}
				names = append(names, expr[i:j])
				i = j
			default:
				i++
			}
		}
		return names, i + 1
	}
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"':
			i++
			for i < len(expr) && expr[i] != '"' {
				i++
			}
			i++
		case c == '[':
			i = strings.IndexByte(expr[i:], ']') + i + 1
		case c >= '0' && c <= '9', c == '.':
			for i < len(expr) && (isIdent(expr[i], false) || expr[i] == '.') {
				i++
			}
		case isIdent(c, true):
			j := i
			for j < len(expr) && isIdent(expr[j], false) {
				j++
			}
			word := expr[i:j]
			k := skipSpace(j)
			switch {
			case promqlKeywords[strings.ToLower(word)]:
				if k < len(expr) && expr[k] == '(' && word != "and" && word != "or" && word != "unless" {
					k = strings.IndexByte(expr[k:], ')') + k + 1 // a label list
				}
				i = k
			case k < len(expr) && expr[k] == '(':
				i = k // a function or aggregation
			case hasWordAt(expr, k, "by"), hasWordAt(expr, k, "without"):
				i = k // an aggregation, its grouping first
			default:
				s := selector{metric: word}
				if k < len(expr) && expr[k] == '{' {
					s.labels, k = matchers(k)
				}
				if !strings.Contains(word, ":") { // recording rules are ours, not exported
					out = append(out, s)
				}
				i = k
			}
		default:
			i++
		}
	}
	return out
}

// hasWordAt reports whether word stands at expr[i:] on its own.
func hasWordAt(expr string, i int, word string) bool {
	rest := expr[min(i, len(expr)):]
	if !strings.HasPrefix(rest, word) {
		return false
	}
	next := strings.TrimPrefix(rest, word)
	return next == "" || next[0] == ' ' || next[0] == '('
}

func TestSelectorsReadPromQL(t *testing.T) {
	t.Parallel()
	got := selectors(`sum by (namespace, le) (rate(foo_bucket{a="x{y}",b=~"1|2"}[5m])) / on(c) bar_total > 0.5 and baz unless backplane:rec:rate5m offset 1m`)
	assert.Equal(t, []selector{{"foo_bucket", []string{"a", "b"}}, {"bar_total", nil}, {"baz", nil}}, got)
}

// devMesh runs the static binary in dev mode on a private database and free ports,
// stopping it when the test ends.
func devMesh(t *testing.T, env ...string) (rest, admin string) {
	t.Helper()
	free := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer func() { _ = l.Close() }()
		return l.Addr().String()
	}
	rest, admin = free(), free()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, staticBinary(t), "dev")
	cmd.Env = append(os.Environ(),
		"BACKPLANE_DATABASE_URL="+dbtest.NewDatabase(t),
		"BACKPLANE_REDIS_URL=",
		"BACKPLANE_HTTP_ADDR="+rest, "BACKPLANE_GRPC_ADDR="+free(), "BACKPLANE_ADMIN_ADDR="+admin,
		"BACKPLANE_DATA_DIR="+t.TempDir(),
		"BACKPLANE_LOG_LEVEL=warn",
	)
	cmd.Env = append(cmd.Env, env...)
	var out strings.Builder
	var mu sync.Mutex
	cmd.Stdout = writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return out.Write(p) })
	cmd.Stderr = cmd.Stdout
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 20 * time.Second
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := get(t.Context(), "http://"+admin+"/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return rest, admin
			}
		}
		if time.Now().After(deadline) {
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("backplane dev was not ready within 60s\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// scrape reads /metrics and returns each metric's label names.
func scrape(t testing.TB, admin string) map[string]map[string]bool {
	t.Helper()
	resp, err := get(t.Context(), "http://"+admin+"/metrics")
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	out := map[string]map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, rest, _ := strings.Cut(line, "{")
		name, _, _ = strings.Cut(name, " ")
		if out[name] == nil {
			out[name] = map[string]bool{}
		}
		if labels, _, ok := strings.Cut(rest, "}"); ok {
			for _, kv := range strings.Split(labels, ",") {
				if k, _, ok := strings.Cut(kv, "="); ok {
					out[name][k] = true
				}
			}
		}
	}
	require.NoError(t, sc.Err())
	return out
}

// TestMonitoringReadsMetricsTheBinaryExports runs Backplane, drives the traffic behind
// every alert and panel (calls, a sign-up whose email is delivered, webhooks, a rate
// limit reached) and checks that every metric and label the rules and the dashboard
// read is one the binary exports.
func TestMonitoringReadsMetricsTheBinaryExports(t *testing.T) {
	t.Parallel()
	rest, admin := devMesh(t)
	post := func(path, body string) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+rest+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	post("/v1/auth/signup", fmt.Sprintf(`{"email":"metrics+%d@example.com","password":"correct horse battery","displayName":"M"}`, time.Now().UnixNano()))
	post("/webhooks/sendgrid", `[]`)
	post("/webhooks/stripe", `{}`)
	// Past the default anonymous limit (60/m), so that calls are refused too.
	for range 70 {
		resp, err := get(t.Context(), "http://"+rest+"/v1/plans")
		require.NoError(t, err)
		_ = resp.Body.Close()
	}

	var exported map[string]map[string]bool
	require.Eventually(t, func() bool {
		exported = scrape(t, admin)
		return exported["backplane_notification_email_attempts_total"] != nil
	}, 30*time.Second, 100*time.Millisecond, "the sign-up's email was never attempted")

	// Labels Prometheus adds when it scrapes: the target's, and the chart's relabelling.
	scrapeLabels := map[string]bool{"namespace": true, "piece": true, "pod": true, "job": true, "instance": true}
	// Exported only when the event happens, which a healthy run cannot stage.
	unseen := map[string]string{
		"up": "written by Prometheus for each target, not by the binary",
		"backplane_ratelimit_redis_failures_total": "counted only while Redis is unreachable (internal/ratelimit/metrics.go)",
	}

	var exprs []string
	for _, g := range readRules(t).Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
		}
	}
	for _, p := range readDashboard(t).Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	checked := 0
	for _, expr := range exprs {
		for _, s := range selectors(expr) {
			if _, ok := unseen[s.metric]; ok {
				continue
			}
			labels, ok := exported[s.metric]
			if !assert.True(t, ok, "%s is not exported by the binary (in %q)", s.metric, expr) {
				continue
			}
			checked++
			for _, l := range s.labels {
				assert.True(t, labels[l] || scrapeLabels[l], "%s has no label %q (in %q)", s.metric, l, expr)
			}
		}
	}
	assert.Greater(t, checked, 20)
	src, err := os.ReadFile(filepath.Join(repoRoot, "internal", "ratelimit", "metrics.go"))
	require.NoError(t, err)
	assert.Contains(t, string(src), `"backplane.ratelimit.redis_failures"`, "the counter the Redis alert reads is gone")
	assert.True(t, slices.ContainsFunc(exprs, func(e string) bool { return strings.Contains(e, "backplane_ratelimit_redis_failures_total") }))
}

// get is http.Get bound to ctx.
func get(ctx context.Context, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	return http.DefaultClient.Do(req)
}
