package grpctest_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/authn"
	"github.com/backplane/backplane/internal/grpctest"
	"github.com/backplane/backplane/internal/grpctest/authntest"
	"github.com/backplane/backplane/internal/identity"
	"github.com/backplane/backplane/internal/redistest"
)

// whoami answers with what the chain told it about the caller: the user and their roles
// (as the display name), or the calling service.
type whoami struct {
	authv1.UnimplementedAuthServiceServer
}

func (whoami) GetCurrentUser(ctx context.Context, _ *authv1.GetCurrentUserRequest) (*authv1.GetCurrentUserResponse, error) {
	p, _ := identity.FromContext(ctx)
	return &authv1.GetCurrentUserResponse{User: &authv1.User{Id: p.UserID, DisplayName: strings.Join(p.Roles, ",")}}, nil
}

func (whoami) LookupUser(ctx context.Context, _ *authv1.LookupUserRequest) (*authv1.LookupUserResponse, error) {
	service, _ := identity.ServiceFromContext(ctx)
	return &authv1.LookupUserResponse{User: &authv1.User{Id: service}}, nil
}

func (whoami) DeleteSession(context.Context, *authv1.DeleteSessionRequest) (*authv1.DeleteSessionResponse, error) {
	return &authv1.DeleteSessionResponse{}, nil
}

// lookup is a valid request for the INTERNAL RPC LookupUser.
var lookup = &authv1.LookupUserRequest{Key: &authv1.LookupUserRequest_Email{Email: "ada@example.com"}}

func registerWhoami(s grpc.ServiceRegistrar) { authv1.RegisterAuthServiceServer(s, whoami{}) }

// lockedBuffer collects a server's logs while its handlers write them.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestStartServesThroughTheProductionChain(t *testing.T) {
	t.Parallel()
	logs := &lockedBuffer{}
	s := grpctest.Start(t, registerWhoami, grpctest.WithLogger(slog.New(slog.NewJSONHandler(logs, nil))))
	client := authv1.NewAuthServiceClient(s.Conn)

	var header metadata.MD
	_, err := client.GetCurrentUser(t.Context(), &authv1.GetCurrentUserRequest{}, grpc.Header(&header))
	require.NoError(t, err)
	require.Len(t, header.Get("x-request-id"), 1, "the request-id interceptor ran")
	require.Contains(t, logs.String(), "GetCurrentUser", "the access log ran")

	_, err = client.DeleteSession(t.Context(), &authv1.DeleteSessionRequest{SessionId: "not-a-uuid"})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "validation ran")

	health, err := healthpb.NewHealthClient(s.Conn).Check(t.Context(), &healthpb.HealthCheckRequest{Service: "backplane.auth.v1.AuthService"})
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, health.GetStatus())
}

// The authenticator authntest builds checks callers as production's does, and mints the
// credentials it accepts.
func TestWithAuthenticatorChecksCallers(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	c := authntest.New(t, authntest.Config{Redis: rdb})
	s := grpctest.Start(t, registerWhoami, c.Option())
	client := authv1.NewAuthServiceClient(s.Conn)
	me := &authv1.GetCurrentUserRequest{}

	t.Run("an access token on a live session passes, with the user role and the roles asked for", func(t *testing.T) {
		_, err := client.GetCurrentUser(t.Context(), me)
		require.Equal(t, codes.Unauthenticated, status.Code(err))

		user := uuid.New()
		resp, err := client.GetCurrentUser(grpctest.Bearer(t.Context(), c.AccessToken(t, user, authn.RoleAdmin)), me)
		require.NoError(t, err)
		require.Equal(t, user.String(), resp.GetUser().GetId())
		require.Equal(t, authn.RoleUser+","+authn.RoleAdmin, resp.GetUser().GetDisplayName())
	})

	t.Run("a token of another key set is UNAUTHENTICATED", func(t *testing.T) {
		other := authntest.New(t, authntest.Config{Redis: rdb})
		_, err := client.GetCurrentUser(grpctest.Bearer(t.Context(), other.AccessToken(t, uuid.New())), me)
		require.Equal(t, codes.Unauthenticated, status.Code(err))
	})

	t.Run("API keys are refused unless Config.APIKeys resolves them", func(t *testing.T) {
		_, err := client.GetCurrentUser(grpctest.Bearer(t.Context(), key.secret), me)
		require.Equal(t, codes.Unauthenticated, status.Code(err))

		withKeys := authntest.New(t, authntest.Config{Redis: rdb, APIKeys: key})
		resp, err := authv1.NewAuthServiceClient(grpctest.Start(t, registerWhoami, withKeys.Option()).Conn).
			GetCurrentUser(grpctest.Bearer(t.Context(), key.secret), me)
		require.NoError(t, err)
		require.Equal(t, key.user, resp.GetUser().GetId())
	})

	t.Run("service token on another connection", func(t *testing.T) {
		_, err := client.LookupUser(t.Context(), lookup)
		require.Equal(t, codes.Unauthenticated, status.Code(err))

		asGateway := authv1.NewAuthServiceClient(s.Dial(t, grpc.WithPerRPCCredentials(c.Services.PerRPCCredentials("gateway"))))
		resp, err := asGateway.LookupUser(t.Context(), lookup)
		require.NoError(t, err)
		require.Equal(t, "gateway", resp.GetUser().GetId())
	})
}

// oneKey is an API-key store with one key, holding the scope GetCurrentUser needs.
type oneKey struct{ secret, user string }

var key = oneKey{secret: authn.APIKeyPrefix + "grpctest", user: "key-owner"}

func (k oneKey) Introspect(_ context.Context, secret string) (identity.Principal, error) {
	if secret != k.secret {
		return identity.Principal{}, authn.ErrInvalidToken
	}
	return identity.Principal{UserID: k.user, APIKeyID: "key-1", Scopes: []string{"profile:read"}, Roles: []string{authn.RoleUser}}, nil
}

func TestWithDialOptionsAppliesToConn(t *testing.T) {
	t.Parallel()
	c := authntest.New(t, authntest.Config{Redis: redistest.Client(t)})
	s := grpctest.Start(t, registerWhoami, grpctest.WithAuthenticator(c.Interceptor),
		grpctest.WithDialOptions(grpc.WithPerRPCCredentials(c.Services.PerRPCCredentials("billing"))))
	resp, err := authv1.NewAuthServiceClient(s.Conn).LookupUser(t.Context(), lookup)
	require.NoError(t, err)
	require.Equal(t, "billing", resp.GetUser().GetId())
}

func TestServerStopsWhenTheTestEnds(t *testing.T) {
	t.Parallel()
	var addr string
	t.Run("user", func(t *testing.T) {
		addr = grpctest.Start(t, registerWhoami).Addr
	})
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	_, err = authv1.NewAuthServiceClient(conn).GetCurrentUser(ctx, &authv1.GetCurrentUserRequest{})
	require.Equal(t, codes.Unavailable, status.Code(err))
}
