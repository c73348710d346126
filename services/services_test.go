package services_test

import (
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"

	accessv1 "github.com/backplane/backplane/gen/backplane/access/v1"
	"github.com/backplane/backplane/internal/access"
	"github.com/backplane/backplane/internal/config"
	"github.com/backplane/backplane/internal/database"
	"github.com/backplane/backplane/services"
)

// The lists derived from services.All agree with each other: what the process dials,
// what the edge routes and what the configuration reads all name the same services.
func TestTheDerivedListsAgree(t *testing.T) {
	t.Parallel()
	names := services.Names()
	require.Len(t, names, 5)
	authorities := 0
	seen := map[string]bool{}
	for _, d := range services.All() {
		require.NoError(t, database.ValidateSchemaName(d.Name), "a service's name is its schema")
		require.False(t, seen[d.Name], "%s is listed twice", d.Name)
		seen[d.Name] = true
		for _, need := range d.Needs {
			require.Contains(t, names, need, "%s needs %s, which is not a service", d.Name, need)
			require.NotEqual(t, d.Name, need)
		}
		require.NotNil(t, d.LoadConfig, "%s was not built with service.Define", d.Name)
		require.NotEmpty(t, d.APIs, "%s serves no public API", d.Name)
		if d.Authority {
			authorities++
		}
	}
	require.Equal(t, 1, authorities, "exactly one service issues the credentials every server checks")

	for _, api := range services.APIs() {
		require.Contains(t, names, api.Owner, "%s is owned by a service of the mesh", api.Service.FullName())
		require.NotNil(t, api.RegisterREST, api.Service.FullName())
	}

	// Every service's address is read from BACKPLANE_<SERVICE>_ADDR.
	env := map[string]string{}
	for _, n := range names {
		env[fmt.Sprintf("BACKPLANE_%s_ADDR", strings.ToUpper(n))] = "dns:///backplane-" + n + ":9090"
	}
	cfg, err := config.Load(config.Serve, func(k string) string { return env[k] }, names...)
	require.NoError(t, err)
	for _, n := range names {
		require.Equal(t, "dns:///backplane-"+n+":9090", cfg.ServiceAddrs[n])
	}
}

// `backplane dev` runs with no configuration at all: every service has a default for
// each of its settings.
func TestEveryServiceLoadsWithDefaults(t *testing.T) {
	t.Parallel()
	for _, d := range services.All() {
		start, err := d.LoadConfig(config.NewEnv(func(string) string { return "" }))
		require.NoError(t, err, d.Name)
		require.NotNil(t, start, d.Name)
	}
}

// Every RPC must declare who may call it; an RPC without a policy would be denied
// everywhere at best, and at worst be the one someone forgets to protect.
func TestEveryRPCDeclaresAnAccessPolicy(t *testing.T) {
	t.Parallel()
	methods := 0
	for _, api := range services.APIs() {
		require.NotNil(t, api.Service, "an API of %s has no descriptor", api.Owner)
		ms := api.Service.Methods()
		for i := range ms.Len() {
			md := ms.Get(i)
			methods++
			require.NotNil(t, access.PolicyOf(md), "%s has no (backplane.access.v1.policy) with an audience", md.FullName())
		}
	}
	require.Greater(t, methods, 20)
}

// Edge RPCs carry an HTTP mapping; INTERNAL ones carry none, so no REST route can exist.
func TestHTTPMappingFollowsAudience(t *testing.T) {
	t.Parallel()
	for _, api := range services.APIs() {
		ms := api.Service.Methods()
		for i := range ms.Len() {
			md := ms.Get(i)
			hasHTTP := proto.HasExtension(md.Options(), annotations.E_Http)
			if access.PolicyOf(md).GetAudience() == accessv1.Audience_AUDIENCE_INTERNAL {
				require.False(t, hasHTTP, "%s is INTERNAL but has a google.api.http mapping", md.FullName())
			} else {
				require.True(t, hasHTTP, "%s is reachable at the edge but has no google.api.http mapping", md.FullName())
			}
		}
	}
}

// The edge routes to every service: each owns a public API, and no API is left without
// a service to serve it.
func TestEveryServiceOwnsAPublicAPI(t *testing.T) {
	t.Parallel()
	var owners []string
	for _, api := range services.APIs() {
		if !slices.Contains(owners, api.Owner) {
			owners = append(owners, api.Owner)
		}
	}
	require.Equal(t, services.Names(), owners)
}

// A service compiles against its contract and the small shared packages, never against
// the edge, the process assembler or the dev-only stand-ins.
func TestServicesDoNotDependOnTheEdgeOrTheAssembler(t *testing.T) {
	t.Parallel()
	for _, name := range services.Names() {
		pkg := "github.com/backplane/backplane/services/" + name
		out, err := exec.CommandContext(t.Context(), "go", "list", "-deps", pkg).CombinedOutput()
		require.NoError(t, err, string(out))
		for _, dep := range strings.Fields(string(out)) {
			for _, forbidden := range []string{
				"github.com/backplane/backplane/gateway",
				"github.com/backplane/backplane/internal/mesh",
				"github.com/rs/cors",
				"github.com/alicebob/miniredis",
			} {
				require.False(t, strings.HasPrefix(dep, forbidden), "%s depends on %s", pkg, dep)
			}
		}
	}
}
