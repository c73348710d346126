package auth

import (
	"context"
	"crypto/rand"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/authn"
	"github.com/backplane/backplane/internal/config"
	"github.com/backplane/backplane/internal/dbtest"
	"github.com/backplane/backplane/internal/grpctest"
	"github.com/backplane/backplane/internal/redistest"
	"github.com/backplane/backplane/internal/scenario"
	"github.com/backplane/backplane/internal/service"
)

func TestDefinitionStartsTheService(t *testing.T) {
	t.Parallel()
	def := Definition()
	require.Equal(t, "auth", def.Name)
	require.Equal(t, []string{"notification"}, def.Needs)
	require.True(t, def.Authority, "auth issues the credentials every other server checks")
	require.Contains(t, def.ServeRequires, "BACKPLANE_KEY_ENCRYPTION_KEY", "serve mode never stores signing keys unsealed")

	deps := service.Deps{
		Logger: slog.New(slog.DiscardHandler),
		DB:     dbtest.NewPool(t, "auth", def.Migrations),
		Redis:  redistest.Client(t),
		// The connection is lazy: nothing is sent unless an email is.
		Peers:     map[string]*grpc.ClientConn{"notification": grpctest.Dial(t, "passthrough:///notification.invalid:1")},
		PublicURL: "https://app.backplane.test",
		Issuer:    "https://app.backplane.test",
	}
	prefix := "auth-test:" + rand.Text() + ":"
	t.Cleanup(func() { deleteKeys(deps.Redis, prefix) })
	cfg, err := LoadConfig(env(nil))
	require.NoError(t, err)
	var inst *service.Instance

	scenario.Step(t, "start", func(t *testing.T) {
		// Built as New builds it, with a key prefix of the test's own on the shared Redis.
		s, err := newServer(t.Context(), cfg, deps, wiring{notifier: notificationClient{}, redisPrefix: prefix})
		require.NoError(t, err)
		inst = s.start(t.Context()) // start keeps its background work from ending with the step
		require.NotNil(t, inst.Tokens, "auth checks tokens with its own verifier")
		require.NotNil(t, inst.APIKeys)
	})
	// Served as the process serves an authority: the chain's authn interceptor checks
	// credentials with the instance's own verifier and key store.
	scenario.Step(t, "the instance serves through the chain, checking credentials itself", func(t *testing.T) {
		in, err := authn.NewInterceptor(authn.InterceptorConfig{
			Tokens: inst.Tokens, APIKeys: inst.APIKeys, Logger: slog.New(slog.DiscardHandler),
		})
		require.NoError(t, err)
		client := authv1.NewAuthServiceClient(grpctest.Start(t, inst.Register, grpctest.WithAuthenticator(in)).Conn)
		jwks, err := client.GetJwks(t.Context(), &authv1.GetJwksRequest{})
		require.NoError(t, err)
		require.NotEmpty(t, jwks.GetKeys(), "it signs with a key it publishes")
		_, err = client.GetCurrentUser(t.Context(), &authv1.GetCurrentUserRequest{})
		require.Equal(t, codes.Unauthenticated, status.Code(err))
	})
	// The background work rebuilds the (empty) live-session mirror and marks it ready.
	scenario.Step(t, "the live-session mirror is rebuilt", func(t *testing.T) {
		mirror := authn.NewLiveSessions(deps.Redis, authn.WithKeyPrefix(prefix+"session:"))
		require.Eventually(t, func() bool {
			ready, err := mirror.Ready(t.Context())
			return err == nil && ready
		}, 5*time.Second, 20*time.Millisecond)
	})
	scenario.Step(t, "stop ends the background work", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		require.NoError(t, inst.Stop(ctx))
	})
	// New sends security emails over the connection to its peer, and needs it.
	scenario.Step(t, "New needs its peer", func(t *testing.T) {
		_, err := New(t.Context(), cfg, deps)
		require.NoError(t, err)
		noPeer := deps
		noPeer.Peers = nil
		_, err = New(t.Context(), cfg, noPeer)
		require.ErrorContains(t, err, "notification", "without its peer the service does not start")
	})
	scenario.Step(t, "a bad setting names its variable while the configuration is read", func(t *testing.T) {
		_, err := def.LoadConfig(config.NewEnv(func(k string) string {
			if k == "BACKPLANE_ACCESS_TOKEN_TTL" {
				return "1y"
			}
			return ""
		}))
		require.ErrorContains(t, err, "BACKPLANE_ACCESS_TOKEN_TTL")
	})
}
