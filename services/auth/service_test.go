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
	"github.com/backplane/backplane/internal/mesh"
	"github.com/backplane/backplane/internal/redistest"
)

func TestServiceRegisters(t *testing.T) {
	t.Parallel()
	svc := Service()
	require.Equal(t, "auth", svc.Name)
	require.Equal(t, []string{"notification"}, svc.Needs)

	// The connection is lazy: nothing is sent unless an email is.
	conn, err := grpc.NewClient("passthrough:///notification.invalid:1", grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	deps := mesh.Deps{
		Config: config.Config{PublicURL: "https://app.backplane.test"},
		Logger: slog.New(slog.DiscardHandler),
		DB:     dbtest.NewPool(t, "auth", svc.Migrations),
		Redis:  redistest.Client(t),
		Peers:  map[string]*grpc.ClientConn{"notification": conn},
		Getenv: func(string) string { return "" },
	}
	srv := grpc.NewServer()
	prefix := "auth-test:" + rand.Text() + ":"
	t.Cleanup(func() { deleteKeys(deps.Redis, prefix) })
	inst, err := start(context.Background(), deps, prefix)
	require.NoError(t, err)
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

	// A bad setting fails the start, naming the variable.
	deps.Getenv = func(k string) string {
		if k == "BACKPLANE_ACCESS_TOKEN_TTL" {
			return "1y"
		}
		return ""
	}
	_, err = start(context.Background(), deps, prefix)
	require.ErrorContains(t, err, "BACKPLANE_ACCESS_TOKEN_TTL")
}
