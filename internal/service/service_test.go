package service_test

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/config"
	"github.com/backplane/backplane/internal/service"
)

type greeterConfig struct{ Greeting string }

func greeter(name string) service.Definition {
	return service.Define(service.Spec[greeterConfig]{
		Name: name,
		APIs: []service.API{service.PublicAPI(authv1.File_backplane_auth_v1_auth_proto.Services().ByName("AuthService"),
			authv1.NewAuthServiceClient, authv1.RegisterAuthServiceHandlerClient)},
		LoadConfig: func(env *config.Env) (greeterConfig, error) {
			c := greeterConfig{Greeting: env.String("GREETING", "hello")}
			if env.Int(strings.ToUpper(name)+"_TIMES", 1) < 1 {
				env.Invalid(strings.ToUpper(name)+"_TIMES", "must be at least 1")
			}
			return c, env.Err()
		},
		Start: func(_ context.Context, cfg greeterConfig, _ service.Deps) (*service.Instance, error) {
			if cfg.Greeting == "fail" {
				return nil, errors.New("refused")
			}
			return &service.Instance{Register: func(grpc.ServiceRegistrar) {}, Stop: func(context.Context) error { return nil }}, nil
		},
	})
}

func TestDefineCarriesTheTypedConfigToStart(t *testing.T) {
	t.Parallel()
	def := greeter("one")
	require.Equal(t, "one", def.APIs[0].Owner, "Define names each API's owner")

	loaded, err := service.Load(func(k string) string { return map[string]string{"GREETING": "fail"}[k] }, def)
	require.NoError(t, err)
	require.Len(t, loaded, 1)
	require.Equal(t, "one", loaded[0].Name)
	_, err = loaded[0].Start(context.Background(), service.Deps{})
	require.EqualError(t, err, "refused", "Start receives the configuration LoadConfig read")

	loaded, err = service.Load(func(string) string { return "" }, def)
	require.NoError(t, err)
	inst, err := loaded[0].Start(context.Background(), service.Deps{})
	require.NoError(t, err)
	require.NotNil(t, inst.Register)
}

func TestLoadReportsEveryServicesBadVariables(t *testing.T) {
	t.Parallel()
	env := map[string]string{"ONE_TIMES": "0", "TWO_TIMES": "many"}
	_, err := service.Load(func(k string) string { return env[k] }, greeter("one"), greeter("two"))
	require.ErrorContains(t, err, "ONE_TIMES: must be at least 1")
	require.ErrorContains(t, err, "TWO_TIMES")
	require.Equal(t, 1, strings.Count(err.Error(), "ONE_TIMES"), "each service reads through an Env of its own")
}

func TestHelpersDeriveFromDefinitions(t *testing.T) {
	t.Parallel()
	defs := []service.Definition{greeter("one"), greeter("two")}
	require.Equal(t, []string{"one", "two"}, service.Names(defs))
	apis := service.APIs(defs)
	require.Len(t, apis, 2)
	require.Equal(t, "two", apis[1].Owner)
	loaded, err := service.Load(func(string) string { return "" }, defs...)
	require.NoError(t, err)
	require.Equal(t, service.Names(defs), service.Names(service.Definitions(loaded)))
}

// The contract is what every service compiles against: it must not drag in the edge,
// the assembler, or the dev-only stand-ins.
func TestTheContractStaysSmall(t *testing.T) {
	t.Parallel()
	out, err := exec.CommandContext(t.Context(), "go", "list", "-deps", "github.com/backplane/backplane/internal/service").CombinedOutput()
	require.NoError(t, err, string(out))
	for _, forbidden := range []string{
		"github.com/backplane/backplane/gateway",
		"github.com/backplane/backplane/internal/mesh",
		"github.com/rs/cors",
		"github.com/alicebob/miniredis",
	} {
		for _, dep := range strings.Fields(string(out)) {
			require.False(t, strings.HasPrefix(dep, forbidden), "internal/service depends on %s", dep)
		}
	}
}
