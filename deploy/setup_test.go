package deploy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// kubeVersions are the Kubernetes releases the chart is rendered for and validated
// against: the oldest and the newest whose API schemas the Go module proxy serves (in
// the k8s.io/kubernetes module), each pinned by its go.sum hash.
var kubeVersions = []struct{ version, sum string }{
	{"1.34.4", "h1:Yy6R4QB8C9kJPp25GFqEvX5XQwY5qzKeqD0Xx6oAcmk="},
	{"1.37.2", "h1:A2VDEiObzkYqFTKhSsn0ZEb0RlLEXpHWj93gi2HqEwE="},
}

// valuesSets are the installs every chart test looks at: the defaults, a
// production-like install, and a trial whose Secret the chart makes.
var valuesSets = []struct{ name, file string }{
	{"default", ""},
	{"prod", "ci/prod-values.yaml"},
	{"trial", "ci/trial-values.yaml"},
}

var (
	repoRoot = mustAbs("..")
	chartDir = mustAbs("helm/backplane")
)

func TestMain(m *testing.M) {
	code := m.Run()
	if staticBuild.path != "" {
		_ = os.RemoveAll(filepath.Dir(staticBuild.path))
	}
	os.Exit(code)
}

func mustAbs(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		panic(err)
	}
	return abs
}

// deployTools are the paths of the pinned tools, built by `go tool` once per test run.
var deployTools struct {
	once  sync.Once
	paths map[string]string
	err   error
}

// tool returns the path of a tool pinned in deploy/tools/go.mod. `go tool -n` builds it
// when the build cache lacks it and prints where the executable is; the tools are
// resolved one after the other so that a cold cache compiles their shared packages once.
func tool(t testing.TB, name string) string {
	t.Helper()
	deployTools.once.Do(func() {
		deployTools.paths = map[string]string{}
		for _, n := range []string{"helm", "promtool", "kubeconform"} {
			// Built once for every test, so bound by none of their contexts.
			cmd := exec.CommandContext(context.Background(), "go", "-C", filepath.Join(repoRoot, "deploy", "tools"), "tool", "-n", n)
			cmd.Env = append(os.Environ(), "GOWORK=off")
			if n == "promtool" {
				// promtool without Prometheus' service-discovery plugins (cloud SDKs it
				// never needs to check rules): a third of the build.
				cmd.Env = append(cmd.Env, "GOFLAGS="+strings.TrimSpace(os.Getenv("GOFLAGS")+" -tags=remove_all_sd"))
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				deployTools.err = fmt.Errorf("build %s (go tool in deploy/tools): %w\n%s", n, err, stderr.String())
				return
			}
			deployTools.paths[n] = strings.TrimSpace(string(out))
		}
	})
	require.NoError(t, deployTools.err)
	return deployTools.paths[name]
}

// run runs a command and returns its combined output, failing the test when it fails.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := runErr(t.Context(), name, args...)
	require.NoError(t, err, "%s %s\n%s", filepath.Base(name), strings.Join(args, " "), out)
	return out
}

// runErr runs a command in the repository's root and returns its combined output.
func runErr(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = repoRoot
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// helmArgs are the arguments that render one values set for one Kubernetes version.
func helmArgs(valuesFile, kubeVersion string, set ...string) []string {
	args := []string{"--kube-version", kubeVersion}
	switch {
	case filepath.IsAbs(valuesFile):
		args = append(args, "-f", valuesFile)
	case valuesFile != "":
		args = append(args, "-f", filepath.Join(chartDir, valuesFile))
	}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	return args
}

// renderText runs helm template and returns the manifests, or helm's error output.
func renderText(t testing.TB, valuesFile string, set ...string) (string, error) {
	t.Helper()
	args := append([]string{"template", "bp", chartDir, "--namespace", "apps"}, helmArgs(valuesFile, kubeVersions[0].version, set...)...)
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(t.Context(), tool(t, "helm"), args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stderr.String(), fmt.Errorf("helm template: %w: %s", err, stderr.String())
	}
	return stdout.String(), nil
}

// object is one rendered Kubernetes object, kept as a YAML node so that each test
// decodes the part it checks into a typed struct.
type object struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name        string            `yaml:"name"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	node yaml.Node
}

// decode decodes the whole object into v.
func (o object) decode(t testing.TB, v any) {
	t.Helper()
	require.NoError(t, o.node.Decode(v), "%s %s", o.Kind, o.Metadata.Name)
}

func (o object) component() string { return o.Metadata.Labels["app.kubernetes.io/component"] }

// render renders a values set (plus --set overrides) and parses every object.
func render(t testing.TB, valuesFile string, set ...string) []object {
	t.Helper()
	text, err := renderText(t, valuesFile, set...)
	require.NoError(t, err)
	return parseObjects(t, text)
}

func parseObjects(t testing.TB, text string) []object {
	t.Helper()
	dec := yaml.NewDecoder(strings.NewReader(text))
	var objs []object
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return objs
		}
		require.NoError(t, err)
		if len(n.Content) == 0 || n.Content[0].Kind != yaml.MappingNode {
			continue // an empty document between separators
		}
		var o object
		require.NoError(t, n.Decode(&o))
		o.node = n
		objs = append(objs, o)
	}
}

// only returns the objects of one kind.
func only(objs []object, kind string) []object {
	var out []object
	for _, o := range objs {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// find returns the object of a kind and name, failing the test when there is none.
func find(t testing.TB, objs []object, kind, name string) object {
	t.Helper()
	for _, o := range objs {
		if o.Kind == kind && o.Metadata.Name == name {
			return o
		}
	}
	require.Failf(t, "object missing", "no %s %q among the rendered objects", kind, name)
	return object{}
}

// chartValues reads the chart's default values.
func chartValues(t testing.TB) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	require.NoError(t, err)
	var v map[string]any
	require.NoError(t, yaml.Unmarshal(b, &v))
	return v
}
