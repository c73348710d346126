package auth

import (
	"context"
	"crypto/rand"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/backplane/backplane/internal/authn"
	"github.com/backplane/backplane/internal/config"
	"github.com/backplane/backplane/internal/dbtest"
	"github.com/backplane/backplane/internal/redistest"
	"github.com/backplane/backplane/internal/service"
)

func TestDefinitionStartsTheService(t *testing.T) {
	t.Parallel()
	def := Definition()
	require.Equal(t, "auth", def.Name)
	require.Equal(t, []string{"notification"}, def.Needs)
	require.True(t, def.Authority, "auth issues the credentials every other server checks")

	// The connection is lazy: nothing is sent unless an email is.
	conn, err := grpc.NewClient("passthrough:///notification.invalid:1", grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	deps := service.Deps{
		Logger:    slog.New(slog.DiscardHandler),
		DB:        dbtest.NewPool(t, "auth", def.Migrations),
		Redis:     redistest.Client(t),
		Peers:     map[string]*grpc.ClientConn{"notification": conn},
		PublicURL: "https://app.backplane.test",
		Issuer:    "https://app.backplane.test",
	}
	srv := grpc.NewServer()
	prefix := "auth-test:" + rand.Text() + ":"
	t.Cleanup(func() { deleteKeys(deps.Redis, prefix) })
	cfg, err := LoadConfig(env(nil))
	require.NoError(t, err)
	// Built as New builds it, with a key prefix of the test's own on the shared Redis.
	s, err := newServer(context.Background(), cfg, deps, wiring{
		notifier: notificationClient{}, redisPrefix: prefix,
	})
	require.NoError(t, err)
	inst := s.start(context.Background())
	inst.Register(srv)
	require.NotNil(t, inst.Tokens, "auth checks tokens with its own verifier")
	require.NotNil(t, inst.APIKeys)
	require.Contains(t, srv.GetServiceInfo(), "backplane.auth.v1.AuthService")

	// The background work rebuilds the (empty) live-session mirror and marks it ready.
	mirror := authn.NewLiveSessions(deps.Redis, authn.WithKeyPrefix(prefix+"session:"))
	require.Eventually(t, func() bool {
		ready, err := mirror.Ready(context.Background())
		return err == nil && ready
	}, 5*time.Second, 20*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, inst.Stop(ctx))

	// New sends security emails over the connection to its peer, and needs it.
	_, err = New(context.Background(), cfg, deps)
	require.NoError(t, err)
	deps.Peers = nil
	_, err = New(context.Background(), cfg, deps)
	require.ErrorContains(t, err, "notification", "without its peer the service does not start")

	// A bad setting fails while the configuration is read, naming the variable.
	_, err = def.LoadConfig(config.NewEnv(func(k string) string {
		if k == "BACKPLANE_ACCESS_TOKEN_TTL" {
			return "1y"
		}
		return ""
	}))
	require.ErrorContains(t, err, "BACKPLANE_ACCESS_TOKEN_TTL")
}
