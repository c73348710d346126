package deploy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// The rendered manifests are validated offline with kubeconform in strict mode, against
// JSON schemas converted here from the OpenAPI document the Kubernetes release ships
// (api/openapi-spec/swagger.json in the k8s.io/kubernetes module), and for the
// Prometheus Operator's kinds from its CRDs (in its module's example/ directory) and
// cert-manager's Certificate from its module's deploy/crds/. All
// come from the Go module proxy, checked against pinned go.sum hashes; kubeconform's own
// schema download needs the internet.

// prometheusOperator is the module whose CRDs define ServiceMonitor and PrometheusRule.
const (
	prometheusOperator    = "github.com/prometheus-operator/prometheus-operator@v0.85.0"
	prometheusOperatorSum = "h1:M5xLCLEoaW2IJfnuCwFzzpL+jSVQu3KGT84Pye+fW8s="
)

// certManager is the module whose CRDs define Certificate, for the pieces' mTLS.
const (
	certManager    = "github.com/cert-manager/cert-manager@v1.19.1"
	certManagerSum = "h1:Txh8L/nLWTDcb7ZnXuXbTe15BxQnLbLirXmbNk0fGgY="
)

var moduleDirs sync.Map // module@version → directory

// moduleDir downloads a module through the Go module proxy (or finds it in the module
// cache), checks its hash and returns its directory.
func moduleDir(t testing.TB, module, sum string) string {
	t.Helper()
	if dir, ok := moduleDirs.Load(module); ok {
		return dir.(string)
	}
	cmd := exec.CommandContext(t.Context(), "go", "mod", "download", "-json", module)
	cmd.Dir = t.TempDir() // outside any module, so no go.mod or go.sum is touched
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "go mod download %s: %s%s", module, out, stderr.String())
	var info struct{ Dir, Sum, Error string }
	require.NoError(t, json.Unmarshal(out, &info))
	require.Empty(t, info.Error)
	require.Equal(t, sum, info.Sum, "%s is not the module the tests were written against", module)
	moduleDirs.Store(module, info.Dir)
	return info.Dir
}

// gvk names a kind the way kubeconform finds its schema file.
type gvk struct{ group, version, kind string }

func gvkOf(apiVersion, kind string) gvk {
	group, version, ok := strings.Cut(apiVersion, "/")
	if !ok {
		group, version = "", apiVersion
	}
	return gvk{group, version, kind}
}

// fileName follows kubeconform's {{ .ResourceKind }}{{ .KindSuffix }}.json: the kind,
// the group's first label and the version, in lower case.
func (g gvk) fileName() string {
	suffix := "-" + g.version
	if g.group != "" {
		suffix = "-" + strings.Split(g.group, ".")[0] + "-" + g.version
	}
	return strings.ToLower(g.kind + suffix + ".json")
}

// kubeSchemas converts a release's swagger.json into standalone strict JSON schemas, one
// per kind: the kind's definition with every definition it refers to inlined under
// "definitions", objects closed to unknown fields.
type kubeSchemas struct {
	defs  map[string]any
	kinds map[gvk]string // → definition name
}

func loadKubeSchemas(t testing.TB, kubeVersion, sum string) *kubeSchemas {
	t.Helper()
	dir := moduleDir(t, "k8s.io/kubernetes@v"+kubeVersion, sum)
	b, err := os.ReadFile(filepath.Join(dir, "api", "openapi-spec", "swagger.json"))
	require.NoError(t, err)
	var doc struct {
		Definitions map[string]any `json:"definitions"`
	}
	require.NoError(t, json.Unmarshal(b, &doc))
	ks := &kubeSchemas{defs: doc.Definitions, kinds: map[gvk]string{}}
	for name, def := range doc.Definitions {
		gvks, _ := def.(map[string]any)["x-kubernetes-group-version-kind"].([]any)
		for _, g := range gvks {
			m := g.(map[string]any)
			ks.kinds[gvk{m["group"].(string), m["version"].(string), m["kind"].(string)}] = name
		}
	}
	// A quantity is written as a string or a bare number ("cpu: 1"); the API server
	// takes both, the swagger document says string.
	ks.defs["io.k8s.apimachinery.pkg.api.resource.Quantity"] = map[string]any{
		"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "number"}},
	}
	return ks
}

func (ks *kubeSchemas) schema(g gvk) (map[string]any, bool) {
	name, ok := ks.kinds[g]
	if !ok {
		return nil, false
	}
	needed := map[string]any{}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok {
				n := strings.TrimPrefix(ref, "#/definitions/")
				if _, seen := needed[n]; !seen {
					needed[n] = strict(ks.defs[n])
					walk(ks.defs[n])
				}
			}
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(ks.defs[name])
	root := strict(ks.defs[name]).(map[string]any)
	root["$schema"] = "http://json-schema.org/draft-07/schema#"
	root["definitions"] = needed
	return root, true
}

// strict returns a copy of an OpenAPI schema as kubectl's validation reads it: objects
// with declared properties take no others, int-or-string fields take either.
func strict(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if x["format"] == "int-or-string" || x["x-kubernetes-int-or-string"] == true {
			return map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}}
		}
		out := make(map[string]any, len(x)+1)
		for k, c := range x {
			out[k] = strict(c)
		}
		_, open := x["additionalProperties"]
		if _, ok := x["properties"]; ok && !open && x["x-kubernetes-preserve-unknown-fields"] != true {
			out["additionalProperties"] = false
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, c := range x {
			out[i] = strict(c)
		}
		return out
	default:
		return v
	}
}

// crdSchemas reads the openAPIV3Schema of each version of the CRDs in files.
func crdSchemas(t testing.TB, files ...string) map[gvk]map[string]any {
	t.Helper()
	out := map[gvk]map[string]any{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		var crd struct {
			Spec struct {
				Group string `yaml:"group"`
				Names struct {
					Kind string `yaml:"kind"`
				} `yaml:"names"`
				Versions []struct {
					Name   string `yaml:"name"`
					Schema struct {
						OpenAPIV3Schema map[string]any `yaml:"openAPIV3Schema"`
					} `yaml:"schema"`
				} `yaml:"versions"`
			} `yaml:"spec"`
		}
		require.NoError(t, yaml.Unmarshal(b, &crd), f)
		for _, v := range crd.Spec.Versions {
			s := strict(v.Schema.OpenAPIV3Schema).(map[string]any)
			s["$schema"] = "http://json-schema.org/draft-07/schema#"
			out[gvk{crd.Spec.Group, v.Name, crd.Spec.Names.Kind}] = s
		}
	}
	return out
}

// kubeconform validates manifests against the schemas of kubeVersion and returns its
// output and whether every object was valid.
func kubeconform(t testing.TB, kubeVersion, sum, manifests string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	ks := loadKubeSchemas(t, kubeVersion, sum)
	po := moduleDir(t, prometheusOperator, prometheusOperatorSum)
	cm := moduleDir(t, certManager, certManagerSum)
	crds := crdSchemas(t,
		filepath.Join(po, "example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml"),
		filepath.Join(po, "example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml"),
		filepath.Join(cm, "deploy/crds/cert-manager.io_certificates.yaml"),
	)
	for _, g := range kindsIn(manifests) {
		s, ok := ks.schema(g)
		if !ok {
			s, ok = crds[g]
		}
		// A kind without a schema is left out, and kubeconform then fails on it.
		if !ok {
			continue
		}
		b, err := json.Marshal(s)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, g.fileName()), b, 0o644))
	}
	file := filepath.Join(dir, "manifests.yaml")
	require.NoError(t, os.WriteFile(file, []byte(manifests), 0o644))
	return runErr(t.Context(), tool(t, "kubeconform"),
		"-strict", "-summary",
		"-kubernetes-version", kubeVersion,
		"-schema-location", filepath.Join(dir, "{{ .ResourceKind }}{{ .KindSuffix }}.json"),
		file)
}

var (
	apiVersionLine = regexp.MustCompile(`(?m)^apiVersion:\s*(\S+)`)
	kindLine       = regexp.MustCompile(`(?m)^kind:\s*(\S+)`)
)

// kindsIn lists the kinds of the documents in manifests, read line by line so that a
// document YAML would refuse (a duplicated key) still gets its schema and is judged by
// kubeconform.
func kindsIn(manifests string) []gvk {
	var out []gvk
	for _, doc := range strings.Split(manifests, "\n---") {
		a, k := apiVersionLine.FindStringSubmatch(doc), kindLine.FindStringSubmatch(doc)
		if a != nil && k != nil {
			out = append(out, gvkOf(a[1], k[1]))
		}
	}
	return out
}

var summary = regexp.MustCompile(`Valid: (\d+), Invalid: (\d+), Errors: (\d+), Skipped: (\d+)`)

func TestManifestsMatchTheKubernetesAPI(t *testing.T) {
	t.Parallel()
	for _, kv := range kubeVersions {
		for _, vs := range valuesSets {
			t.Run(kv.version+"/"+vs.name, func(t *testing.T) {
				t.Parallel()
				args := append([]string{"template", "bp", chartDir, "--namespace", "apps"}, helmArgs(vs.file, kv.version)...)
				manifests := run(t, tool(t, "helm"), args...)
				out, err := kubeconform(t, kv.version, kv.sum, manifests)
				require.NoError(t, err, out)
				m := summary.FindStringSubmatch(out)
				require.NotNil(t, m, out)
				valid, _ := strconv.Atoi(m[1])
				assert.Equal(t, len(parseObjects(t, manifests)), valid, "every object validated\n%s", out)
				assert.Equal(t, []string{"0", "0", "0"}, m[2:], out)
			})
		}
	}
}

// TestSchemasCatchWhatTheAPIServerWould shows that the validation above has teeth: an
// unknown field, a missing required field, a wrong type and an unknown kind all fail.
func TestSchemasCatchWhatTheAPIServerWould(t *testing.T) {
	t.Parallel()
	kv := kubeVersions[0]
	base := `apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      containers:
        - name: x
          image: x
          resources: {requests: {cpu: 1, memory: 64Mi}}
%s`
	out, err := kubeconform(t, kv.version, kv.sum, fmt.Sprintf(base, ""))
	require.NoError(t, err, "the well-formed Deployment must pass (a bare-number quantity included)\n%s", out)

	for name, c := range map[string]struct{ doc, want string }{
		"unknown field":  {fmt.Sprintf(base, "          readinessProbes: {}\n"), "additional properties 'readinessProbes' not allowed"},
		"wrong type":     {fmt.Sprintf(base, "          ports: [{containerPort: http}]\n"), "got string, want integer"},
		"missing field":  {strings.Replace(fmt.Sprintf(base, ""), "- name: x\n          image: x", "- image: x", 1), "missing property 'name'"},
		"unknown kind":   {"apiVersion: apps/v1\nkind: Deployments\nmetadata: {name: x}\n", "could not find schema for Deployments"},
		"duplicated key": {strings.Replace(fmt.Sprintf(base, ""), "metadata: {name: x}", "metadata: {name: x, name: y}", 1), `key "name" already set`},
	} {
		out, err := kubeconform(t, kv.version, kv.sum, c.doc)
		require.Error(t, err, "%s passed validation\n%s", name, out)
		assert.Contains(t, out, c.want, name)
	}
}
