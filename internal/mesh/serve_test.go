package mesh_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/config"
	"github.com/backplane/backplane/internal/mesh"
	"github.com/backplane/backplane/internal/service"
)

func definition(name string, authority bool, public bool, needs ...string) service.Definition {
	spec := service.Spec[struct{}]{
		Name: name, Needs: needs, Authority: authority,
		LoadConfig: func(env *config.Env) (struct{}, error) { return struct{}{}, env.Err() },
		Start: func(context.Context, struct{}, service.Deps) (*service.Instance, error) {
			return &service.Instance{}, nil
		},
	}
	if public {
		spec.APIs = []service.API{service.PublicAPI(authv1.File_backplane_auth_v1_auth_proto.Services().ByName("AuthService"),
			authv1.NewAuthServiceClient, authv1.RegisterAuthServiceHandlerClient)}
	}
	return service.Define(spec)
}

// What a serve-mode piece requires follows from the definitions alone: the gateway
// dials every owner of a public API; a service dials what it needs and the authority.
func TestCheckServeDerivesRequirementsFromDefinitions(t *testing.T) {
	t.Parallel()
	defs := []service.Definition{
		definition("issuer", true, true),
		definition("mailer", false, false, "issuer"),
		definition("billing", false, true, "mailer"),
	}
	cfg, err := config.Load(config.Serve, func(k string) string {
		return map[string]string{
			"BACKPLANE_SERVICE_TOKEN_SECRET": "0123456789abcdef0123456789abcdef",
			"BACKPLANE_PUBLIC_URL":           "https://app.example.com",
		}[k]
	}, "issuer", "mailer", "billing")
	require.NoError(t, err)

	err = mesh.CheckServe(cfg, defs, mesh.Gateway)
	require.ErrorContains(t, err, "BACKPLANE_ISSUER_ADDR")
	require.ErrorContains(t, err, "BACKPLANE_BILLING_ADDR")
	require.NotContains(t, err.Error(), "BACKPLANE_MAILER_ADDR", "mailer serves nothing at the edge")
	require.NotContains(t, err.Error(), "BACKPLANE_DATABASE_URL", "the gateway has no database")

	err = mesh.CheckServe(cfg, defs, "billing")
	require.ErrorContains(t, err, "BACKPLANE_MAILER_ADDR", "what it needs")
	require.ErrorContains(t, err, "BACKPLANE_ISSUER_ADDR", "the authority, which checks its callers' credentials")
	require.ErrorContains(t, err, "BACKPLANE_DATABASE_URL")

	err = mesh.CheckServe(cfg, defs, "issuer")
	require.NotContains(t, err.Error(), "BACKPLANE_ISSUER_ADDR", "the authority checks credentials itself")

	require.ErrorContains(t, mesh.CheckServe(cfg, defs, "nonsense"), "unknown piece")
	require.ErrorContains(t, mesh.CheckServe(cfg, defs[1:], "billing"), "authority")
}
