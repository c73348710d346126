package auth

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/backplane/backplane/gateway"
	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/authn"
	"github.com/backplane/backplane/internal/grpctest"
	"github.com/backplane/backplane/internal/scenario"
)

// edgeBundle is the auth service behind an edge wired as the mesh wires one: the edge's
// verifier keeps no records of its own, so a session whose key the mirror lacks is asked
// about at auth (authn.GRPCSessionRecords over records), and the mirror is marked ready,
// so a lost key is not taken for a rebuild in progress.
type edgeBundle struct {
	*grpcBundle
	rest string
	grpc authv1.AuthServiceClient
}

// setupEdge puts an edge in front of b whose session misses go to records: b's own
// server (through the gateway's credential) or a connection to nowhere.
func setupEdge(t *testing.T, b *grpcBundle, records grpc.ClientConnInterface) *edgeBundle {
	t.Helper()
	services, err := authn.NewHMACServiceTokens([]byte(testServiceTokenSecret), time.Minute, nil)
	require.NoError(t, err)
	sessions := authn.NewLiveSessions(b.rdb,
		authn.WithKeyPrefix(b.prefix+"session:"),
		authn.WithSessionRecords(authn.NewGRPCSessionRecords(authv1.NewAuthServiceClient(records))))
	verifier, err := authn.NewVerifier(authn.VerifierConfig{
		Issuer: testPublicURL, Audience: authn.Audience,
		// The keys come from auth's own issuer, so that only the session check
		// depends on reaching auth.
		Keys:     authn.IssuerJWKS{Issuer: b.srv.issuer},
		Sessions: sessions,
		CacheFor: 250 * time.Millisecond,
	})
	require.NoError(t, err)
	in, err := authn.NewInterceptor(authn.InterceptorConfig{
		Tokens:       verifier,
		APIKeys:      authn.NewCachedIntrospector(authn.GRPCIntrospector{Client: b.asGateway}, time.Second, nil),
		Services:     services,
		Vouches:      services.Vouches(),
		IssueVouches: true,
		Logger:       slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	sc := grpctest.ServerConfig(t)
	sc.Authenticate.Unary = append(sc.Authenticate.Unary, in.Unary())
	sc.Authenticate.Stream = append(sc.Authenticate.Stream, in.Stream())
	gw, err := gateway.New(t.Context(), gateway.Config{
		Logger:   slog.New(slog.DiscardHandler),
		Server:   sc,
		Backends: map[string]grpc.ClientConnInterface{"auth": b.gatewayConn},
		APIs:     Definition().APIs,
	})
	require.NoError(t, err)
	rest := httptest.NewServer(gw.REST())
	t.Cleanup(rest.Close)
	// The mirror holds every live session, as far as anyone can tell.
	require.NoError(t, b.rdb.Set(t.Context(), b.prefix+"session:_ready", "ready", 0).Err())
	return &edgeBundle{grpcBundle: b, rest: rest.URL, grpc: authv1.NewAuthServiceClient(grpctest.Serve(t, gw.GRPC()).Conn)}
}

// me calls GetCurrentUser through each front door as token, losing the session's key
// (when key is set) before each call, and returns the REST status and the gRPC code.
func (e *edgeBundle) me(t *testing.T, token, key string) (int, codes.Code) {
	t.Helper()
	if key != "" {
		e.loseKey(t, key)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, e.rest+"/v1/users/me", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	if key != "" {
		e.loseKey(t, key)
	}
	_, err = e.grpc.GetCurrentUser(bearer(t, token), &authv1.GetCurrentUserRequest{})
	return resp.StatusCode, status.Code(err)
}

// sessionKey is the mirror's key of the session an access token speaks for.
func (b *testBundle) sessionKey(t *testing.T, token string) string {
	t.Helper()
	p, err := b.srv.Verifier().Verify(t.Context(), token)
	require.NoError(t, err)
	return b.prefix + "session:" + p.SessionID
}

// loseKey deletes a session's key, as an eviction or a failover to a replica that never
// got it would, and waits out the edge's liveness cache.
func (b *testBundle) loseKey(t *testing.T, key string) {
	t.Helper()
	require.NoError(t, b.rdb.Del(t.Context(), key).Err())
	time.Sleep(300 * time.Millisecond)
}

// A live session's key lost from Redis while the mirror is marked ready: the edge asked
// nobody and refused the session (401), though auth's own port accepted it. Now the edge
// asks auth, which answers from PostgreSQL and writes the key back; an ended session
// stays refused; auth out of reach is UNAVAILABLE, never 401 and never a pass.
func TestEdgeAsksAuthAboutALostSessionKey(t *testing.T) {
	t.Parallel()
	b := setupGRPC(t)
	e := setupEdge(t, b, b.gatewayConn)
	acct := b.signUp(t, uniqueEmail())
	token := acct.tokens.GetAccessToken()
	key := b.sessionKey(t, token)

	scenario.Step(t, "a live session's lost key: passes on both doors, and the key is back", func(t *testing.T) {
		code, grpcCode := e.me(t, token, key)
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, codes.OK, grpcCode)
		state, err := b.rdb.Get(t.Context(), key).Result()
		require.NoError(t, err, "the key is written back")
		require.Equal(t, "1", state)
		ttl, err := b.rdb.PTTL(t.Context(), key).Result()
		require.NoError(t, err)
		require.Greater(t, ttl, b.cfg.RefreshTokenTTL-time.Minute, "with the session's own expiry")
	})
	scenario.Step(t, "an ended session's lost key: refused on both doors", func(t *testing.T) {
		_, err := b.srv.Logout(b.as(t, token), &authv1.LogoutRequest{})
		require.NoError(t, err)
		code, grpcCode := e.me(t, token, key)
		require.Equal(t, http.StatusUnauthorized, code)
		require.Equal(t, codes.Unauthenticated, grpcCode)
		state, err := b.rdb.Get(t.Context(), key).Result()
		require.NoError(t, err)
		require.Equal(t, "0", state, "a tombstone spares PostgreSQL the next lookups")
	})
	scenario.Step(t, "auth out of reach on a miss: UNAVAILABLE on both doors", func(t *testing.T) {
		nowhere, err := grpc.NewClient("127.0.0.1:1", grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		t.Cleanup(func() { _ = nowhere.Close() })
		cut := setupEdge(t, b, nowhere)
		live := b.signUp(t, uniqueEmail()).tokens.GetAccessToken()
		code, grpcCode := cut.me(t, live, b.sessionKey(t, live))
		require.Equal(t, http.StatusServiceUnavailable, code)
		require.Equal(t, codes.Unavailable, grpcCode)
	})
}

// CheckSession answers a service from PostgreSQL and repairs the mirror; it is closed to
// anyone without a service credential, and to users however privileged.
func TestCheckSession(t *testing.T) {
	t.Parallel()
	b := setupGRPC(t)
	acct := b.signUp(t, uniqueEmail())
	token := acct.tokens.GetAccessToken()
	key := b.sessionKey(t, token)
	sid := key[len(b.prefix+"session:"):]
	ctx := t.Context()

	scenario.Step(t, "live: answered and the key written back", func(t *testing.T) {
		require.NoError(t, b.rdb.Del(ctx, key).Err())
		resp, err := b.asGateway.CheckSession(ctx, &authv1.CheckSessionRequest{SessionId: sid})
		require.NoError(t, err)
		require.True(t, resp.GetLive())
		require.WithinDuration(t, time.Now().Add(b.cfg.RefreshTokenTTL), resp.GetExpireTime().AsTime(), time.Minute)
		state, err := b.rdb.Get(ctx, key).Result()
		require.NoError(t, err)
		require.Equal(t, "1", state)
	})
	scenario.Step(t, "closed to users and to callers without a service credential", func(t *testing.T) {
		_, err := b.client.CheckSession(ctx, &authv1.CheckSessionRequest{SessionId: sid})
		require.Equal(t, codes.Unauthenticated, status.Code(err))
		_, err = b.client.CheckSession(bearer(t, token), &authv1.CheckSessionRequest{SessionId: sid})
		require.Equal(t, codes.PermissionDenied, status.Code(err))
		// A handler reached without the interceptor still refuses.
		_, err = b.srv.CheckSession(b.as(t, token), &authv1.CheckSessionRequest{SessionId: sid})
		require.Error(t, err)
	})
	scenario.Step(t, "ended: not live, and a tombstone written", func(t *testing.T) {
		_, err := b.srv.Logout(b.as(t, token), &authv1.LogoutRequest{})
		require.NoError(t, err)
		require.NoError(t, b.rdb.Del(ctx, key).Err())
		resp, err := b.asGateway.CheckSession(ctx, &authv1.CheckSessionRequest{SessionId: sid})
		require.NoError(t, err)
		require.False(t, resp.GetLive())
		require.Nil(t, resp.GetExpireTime())
		state, err := b.rdb.Get(ctx, key).Result()
		require.NoError(t, err)
		require.Equal(t, "0", state)
	})
	scenario.Step(t, "unknown or malformed ids", func(t *testing.T) {
		resp, err := b.asGateway.CheckSession(ctx, &authv1.CheckSessionRequest{SessionId: "0190a0a0-0000-7000-8000-000000000000"})
		require.NoError(t, err)
		require.False(t, resp.GetLive())
		_, err = b.asGateway.CheckSession(ctx, &authv1.CheckSessionRequest{SessionId: "not-a-session"})
		require.Equal(t, codes.InvalidArgument, status.Code(err))
	})
}
