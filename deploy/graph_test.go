package deploy_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/backplane/backplane/internal/mesh"
	"github.com/backplane/backplane/services"
)

// These tests hold the chart to the code it deploys: the services each piece dials, the
// gRPC services the edge serves, the variables the binary reads.

func readYAMLFile(t testing.TB, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var v map[string]any
	require.NoError(t, yaml.Unmarshal(b, &v))
	return v
}

// dials returns the services each piece dials at run time, as the binary computes it.
func dials(t testing.TB) map[string][]string {
	t.Helper()
	out, err := mesh.Dials(services.All())
	require.NoError(t, err)
	return out
}

// TestChartCallsAreTheServicesDependencies: pieces.<name>.calls draws the
// NetworkPolicies, so it must name exactly what each piece dials.
func TestChartCallsAreTheServicesDependencies(t *testing.T) {
	t.Parallel()
	values := chartValues(t)["pieces"].(map[string]any)
	for piece, want := range dials(t) {
		var got []string
		for _, c := range values[piece].(map[string]any)["calls"].([]any) {
			got = append(got, c.(string))
		}
		assert.ElementsMatch(t, want, got, "values.yaml pieces.%s.calls must list what %s dials (its Needs, plus auth)", piece, piece)
	}
}

// edgeServiceNames are the gRPC services the gateway's native door serves.
func edgeServiceNames(t testing.TB) []string {
	t.Helper()
	var out []string
	for _, e := range services.APIs() {
		out = append(out, string(e.Service.FullName()))
	}
	require.NotEmpty(t, out)
	return out
}

func TestGRPCIngressPathsCoverEveryEdgeService(t *testing.T) {
	t.Parallel()
	var paths []string
	for _, p := range chartValues(t)["ingress"].(map[string]any)["grpc"].(map[string]any)["paths"].([]any) {
		paths = append(paths, p.(string))
	}
	for _, svc := range edgeServiceNames(t) {
		assert.Contains(t, paths, "/"+svc, "values.yaml ingress.grpc.paths lacks a gRPC service the gateway serves")
	}
}

// variableLiteral is a BACKPLANE_* name written as a whole Go string literal, as the
// configuration readers name them.
var variableLiteral = regexp.MustCompile(`"(BACKPLANE_[A-Z0-9_]*[A-Z0-9])"`)

// readVariables returns the BACKPLANE_* variables named in the binary's Go source
// (tests and generated code aside), less those only tests read.
func readVariables(t testing.TB) []string {
	t.Helper()
	seen := map[string]bool{}
	for _, dir := range []string{"cmd", "gateway", "internal", "services"} {
		root, err := os.OpenRoot(filepath.Join(repoRoot, dir))
		require.NoError(t, err)
		fsys := root.FS()
		err = fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			b, err := fs.ReadFile(fsys, path)
			if err != nil {
				return err
			}
			for _, m := range variableLiteral.FindAllStringSubmatch(string(b), -1) {
				if !strings.HasPrefix(m[1], "BACKPLANE_TEST_") {
					seen[m[1]] = true
				}
			}
			return nil
		})
		require.NoError(t, err)
		require.NoError(t, root.Close())
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}
