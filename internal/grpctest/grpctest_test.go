package grpctest_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"log/slog"
	"sync"
	"testing"
	"time"

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
	"github.com/backplane/backplane/internal/identity"
	"github.com/backplane/backplane/internal/redistest"
)

// whoami answers with what the chain told it about the caller.
type whoami struct {
	authv1.UnimplementedAuthServiceServer
}

func (whoami) GetCurrentUser(ctx context.Context, _ *authv1.GetCurrentUserRequest) (*authv1.GetCurrentUserResponse, error) {
	p, _ := identity.FromContext(ctx)
	return &authv1.GetCurrentUserResponse{User: &authv1.User{Id: p.UserID}}, nil
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

// checks is a real authn interceptor and what mints credentials it accepts.
type checks struct {
	interceptor *authn.Interceptor
	issuer      *authn.Issuer
	sessions    *authn.LiveSessions
	services    *authn.HMACServiceTokens
}

func newChecks(t *testing.T) checks {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	keys, err := authn.NewKeySet(authn.SigningKey{ID: authn.KeyID(priv.Public().(ed25519.PublicKey)), Private: priv})
	require.NoError(t, err)
	c := checks{}
	c.issuer, err = authn.NewIssuer(authn.IssuerConfig{Issuer: "https://grpctest.test", Audience: authn.Audience, TTL: time.Minute}, keys)
	require.NoError(t, err)
	rdb := redistest.Client(t)
	prefix := "grpctest:" + rand.Text() + ":"
	t.Cleanup(func() {
		keys, _ := rdb.Keys(context.Background(), prefix+"*").Result()
		if len(keys) > 0 {
			_ = rdb.Del(context.Background(), keys...).Err()
		}
	})
	c.sessions = authn.NewLiveSessions(rdb, authn.WithKeyPrefix(prefix))
	verifier, err := authn.NewVerifier(authn.VerifierConfig{
		Issuer: "https://grpctest.test", Audience: authn.Audience, Keys: authn.IssuerJWKS{Issuer: c.issuer}, Sessions: c.sessions,
	})
	require.NoError(t, err)
	c.services, err = authn.NewHMACServiceTokens([]byte(rand.Text()+rand.Text()), time.Minute, nil)
	require.NoError(t, err)
	c.interceptor, err = authn.NewInterceptor(authn.InterceptorConfig{
		Tokens: verifier, APIKeys: authn.NewCachedIntrospector(noKeys{}, time.Second, nil), Services: c.services,
		Logger: slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	return c
}

// noKeys is an API-key store with no keys in it.
type noKeys struct{}

func (noKeys) Introspect(context.Context, string) (identity.Principal, error) {
	return identity.Principal{}, authn.ErrInvalidToken
}

func TestWithAuthenticatorChecksCallers(t *testing.T) {
	t.Parallel()
	c := newChecks(t)
	s := grpctest.Start(t, registerWhoami, grpctest.WithAuthenticator(c.interceptor))
	client := authv1.NewAuthServiceClient(s.Conn)

	t.Run("bearer token", func(t *testing.T) {
		_, err := client.GetCurrentUser(t.Context(), &authv1.GetCurrentUserRequest{})
		require.Equal(t, codes.Unauthenticated, status.Code(err))

		sessionID := rand.Text()
		require.NoError(t, c.sessions.MarkLive(t.Context(), sessionID, time.Now().Add(time.Minute)))
		token, _, err := c.issuer.Issue("user-1", sessionID, []string{authn.RoleUser})
		require.NoError(t, err)
		resp, err := client.GetCurrentUser(grpctest.Bearer(t.Context(), token), &authv1.GetCurrentUserRequest{})
		require.NoError(t, err)
		require.Equal(t, "user-1", resp.GetUser().GetId())
	})

	t.Run("service token on another connection", func(t *testing.T) {
		_, err := client.LookupUser(t.Context(), lookup)
		require.Equal(t, codes.Unauthenticated, status.Code(err))

		asGateway := authv1.NewAuthServiceClient(s.Dial(t, grpc.WithPerRPCCredentials(c.services.PerRPCCredentials("gateway"))))
		resp, err := asGateway.LookupUser(t.Context(), lookup)
		require.NoError(t, err)
		require.Equal(t, "gateway", resp.GetUser().GetId())
	})
}

func TestWithDialOptionsAppliesToConn(t *testing.T) {
	t.Parallel()
	c := newChecks(t)
	s := grpctest.Start(t, registerWhoami, grpctest.WithAuthenticator(c.interceptor),
		grpctest.WithDialOptions(grpc.WithPerRPCCredentials(c.services.PerRPCCredentials("billing"))))
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
