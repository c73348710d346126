package backplane_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// partnerModules are the only modules a program that imports the SDK compiles: gRPC and
// protobuf, the generated code of the root module with what it imports, and x/sync
// for the single refresh in flight. The server's own dependencies (pgx, River, Redis,
// OpenTelemetry, SendGrid, ...) must never be among them.
var partnerModules = []string{
	"github.com/backplane/backplane",        // gen/ only, checked below
	"github.com/backplane/backplane/sdk/go", // this module
	"google.golang.org/grpc",
	"google.golang.org/protobuf",
	"google.golang.org/genproto/googleapis/api",
	"google.golang.org/genproto/googleapis/rpc",
	"github.com/grpc-ecosystem/grpc-gateway/v2",                  // the gateway handlers generated beside each service's client
	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go", // the validation options the protos carry
	"golang.org/x/net", "golang.org/x/sys", "golang.org/x/text",  // gRPC's
	"golang.org/x/sync",
}

// A partner's program is built from a module of its own that requires the SDK, as `go
// get` would make it: `go mod tidy` resolves it offline from the module cache, and
// `go list -deps` lists every package the program compiles.
func TestPartnerBuildCompilesNoServerDependency(t *testing.T) {
	t.Parallel()
	sdkDir, err := filepath.Abs("..")
	require.NoError(t, err)
	rootDir := goOut(t, sdkDir, "list", "-m", "-f", "{{.Dir}}", "github.com/backplane/backplane")

	partner := t.TempDir()
	writeFile(t, filepath.Join(partner, "go.mod"), `module example.com/partner

go 1.26.0

require github.com/backplane/backplane/sdk/go v0.0.0-00010101000000-000000000000

replace github.com/backplane/backplane/sdk/go => `+sdkDir+`

// Until a release is tagged, the root module too comes from this checkout.
replace github.com/backplane/backplane => `+rootDir+`
`)
	writeFile(t, filepath.Join(partner, "main.go"), `package main

import (
	"context"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/sdk/go/backplane"
)

func main() {
	c, err := backplane.New("api.example.com:443")
	if err != nil {
		panic(err)
	}
	_, _ = c.Auth.GetCurrentUser(context.Background(), &authv1.GetCurrentUserRequest{})
}
`)
	goOut(t, partner, "mod", "tidy")
	goOut(t, partner, "build", "-o", os.DevNull, ".")

	pkgs := strings.Fields(goOut(t, partner, "list", "-deps", "-f", "{{if .Module}}{{.Module.Path}}:{{.ImportPath}}{{end}}", "."))
	modules := map[string]bool{}
	for _, p := range pkgs {
		mod, pkg, _ := strings.Cut(p, ":")
		if mod == "example.com/partner" {
			continue
		}
		require.Contains(t, partnerModules, mod, "package %s", pkg)
		if mod == "github.com/backplane/backplane" {
			require.True(t, strings.HasPrefix(pkg, "github.com/backplane/backplane/gen/"), "only generated code of the root module: %s", pkg)
		}
		modules[mod] = true
	}
	require.True(t, modules["github.com/backplane/backplane/sdk/go"], "the program compiles the SDK")

	// What the partner's go.mod requires is what its build needs, nothing more.
	var gomod struct{ Require []struct{ Path string } }
	require.NoError(t, json.Unmarshal([]byte(goOut(t, partner, "mod", "edit", "-json")), &gomod))
	require.NotEmpty(t, gomod.Require)
	for _, r := range gomod.Require {
		require.Contains(t, partnerModules, r.Path, "the partner's go.mod requires it")
	}
}

// goOut runs the go command in dir, offline, and returns its trimmed output.
func goOut(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOSUMDB=off", "GOWORK=off")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "go %s: %s", strings.Join(args, " "), stderr.String())
	return strings.TrimSpace(string(out))
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
}
