package authn

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/grpctest"
	"github.com/backplane/backplane/internal/identity"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

func newTestVouches(t *testing.T, now func() time.Time) (*HMACServiceTokens, *Vouches) {
	t.Helper()
	tokens, err := NewHMACServiceTokens(testSecret, time.Minute, now)
	require.NoError(t, err)
	return tokens, tokens.Vouches()
}

func TestVouchSpeaksOnlyForItsCredentialAndBriefly(t *testing.T) {
	t.Parallel()
	now := time.Now()
	tokens, v := newTestVouches(t, func() time.Time { return now })
	c := Checked{
		Principal: identity.Principal{UserID: "u1", SessionID: "s1", Roles: []string{RoleUser, RoleAdmin}},
		LiveAt:    now.Add(-100 * time.Millisecond),
		Expires:   now.Add(time.Hour),
	}
	vouch, ok := v.Mint(c, "the-token")
	require.True(t, ok)

	got, err := v.Check(vouch, "the-token")
	require.NoError(t, err)
	require.Equal(t, c.Principal, got.Principal)
	require.Equal(t, c.LiveAt.UnixMilli(), got.LiveAt.UnixMilli())

	_, err = v.Check(vouch, "another-token")
	require.ErrorIs(t, err, ErrInvalidToken, "a vouch speaks for one credential only")
	_, err = v.Check(vouch[:len(vouch)-2]+"AA", "the-token")
	require.ErrorIs(t, err, ErrInvalidToken, "a changed signature")
	other, err := NewHMACServiceTokens([]byte("another-secret-another-secret-12"), time.Minute, nil)
	require.NoError(t, err)
	forged, ok := other.Vouches().Mint(c, "the-token")
	require.True(t, ok)
	_, err = v.Check(forged, "the-token")
	require.ErrorIs(t, err, ErrInvalidToken, "signed with another secret")

	// Neither passes for the other: a service token is no vouch, a vouch no service token.
	st, err := tokens.Mint("gateway")
	require.NoError(t, err)
	_, err = v.Check(st, "the-token")
	require.ErrorIs(t, err, ErrInvalidToken)
	_, err = tokens.Check(vouch)
	require.ErrorIs(t, err, ErrInvalidToken)

	// It lives seconds, and never past the credential's own expiry.
	now = now.Add(vouchTTL)
	_, err = v.Check(vouch, "the-token")
	require.ErrorIs(t, err, ErrInvalidToken, "expired")
	c.Expires = now.Add(time.Second)
	vouch, _ = v.Mint(c, "the-token")
	now = now.Add(time.Second)
	_, err = v.Check(vouch, "the-token")
	require.ErrorIs(t, err, ErrInvalidToken, "gone with the token")

	// A value that could be mistaken for a separator is never vouched for.
	_, ok = v.Mint(Checked{Principal: identity.Principal{UserID: "u\x00admin"}}, "the-token")
	require.False(t, ok)
}

func TestVouchIsReusedOnlyForTheSameOutcomeAndRememberedOnlyUntilItExpires(t *testing.T) {
	t.Parallel()
	now := time.Now()
	_, v := newTestVouches(t, func() time.Time { return now })
	c := Checked{
		Principal: identity.Principal{UserID: "u1", SessionID: "s1", Roles: []string{RoleUser}},
		LiveAt:    now,
		Expires:   now.Add(time.Hour),
	}
	first, ok := v.Mint(c, "the-token")
	require.True(t, ok)
	now = now.Add(vouchReuse / 2)
	again, _ := v.Mint(c, "the-token")
	require.Equal(t, first, again, "the same outcome within a second: the same vouch")

	fresher := c
	fresher.LiveAt = now
	other, _ := v.Mint(fresher, "the-token")
	require.NotEqual(t, first, other, "a newer liveness answer is vouched for anew")
	got, err := v.Check(other, "the-token")
	require.NoError(t, err)
	require.Equal(t, now.UnixMilli(), got.LiveAt.UnixMilli())

	admin := c
	admin.Principal.Roles = []string{RoleUser, RoleAdmin}
	elevated, _ := v.Mint(admin, "the-token")
	require.NotEqual(t, first, elevated, "other roles, another vouch")
	forOther, _ := v.Mint(c, "another-token")
	require.NotEqual(t, first, forOther, "another credential, another vouch")

	now = now.Add(vouchReuse)
	later, _ := v.Mint(c, "the-token")
	require.NotEqual(t, first, later, "after a second, a fresh vouch")

	// Checked once, a vouch is remembered, but only for its credential and its lifetime.
	_, err = v.Check(first, "the-token")
	require.NoError(t, err)
	_, err = v.Check(first, "another-token")
	require.ErrorIs(t, err, ErrInvalidToken)
	now = now.Add(vouchTTL)
	_, err = v.Check(first, "the-token")
	require.ErrorIs(t, err, ErrInvalidToken, "expired, though remembered")
}

// serviceBundle is a service's interceptor that takes vouches, in front of echoAuth.
type serviceBundle struct {
	*testBundle
	client  authv1.AuthServiceClient
	tokens  *HMACServiceTokens
	vouches *Vouches
	now     *time.Time
}

func setupVouched(t *testing.T, keys fakeKeys) *serviceBundle {
	t.Helper()
	b := setup(t)
	now := time.Now()
	sb := &serviceBundle{testBundle: b, now: &now}
	sb.tokens, sb.vouches = newTestVouches(t, func() time.Time { return *sb.now })
	in, err := NewInterceptor(InterceptorConfig{
		Tokens:   b.verifier,
		APIKeys:  keys,
		Services: sb.tokens,
		Vouches:  sb.vouches,
		Logger:   slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	srv := grpctest.Start(t, func(s grpc.ServiceRegistrar) {
		authv1.RegisterAuthServiceServer(s, echoAuth{})
	}, grpctest.WithAuthenticator(in))
	sb.client = authv1.NewAuthServiceClient(srv.Conn)
	return sb
}

func TestServiceTakesTheEdgesVouchAndStillEnforcesPolicy(t *testing.T) {
	t.Parallel()
	// The service's own introspector knows no key: what it learns of keys below, it
	// learns from the vouch.
	b := setupVouched(t, fakeKeys{})
	token, sid := b.login(t, RoleUser)
	serviceToken, err := b.tokens.Mint("gateway")
	require.NoError(t, err)
	vouchFor := func(c Checked, credential string) string {
		v, ok := b.vouches.Mint(c, credential)
		require.True(t, ok)
		return v
	}
	user := Checked{Principal: identity.Principal{UserID: "u-1", SessionID: sid, Roles: []string{RoleUser}}, LiveAt: *b.now, Expires: b.now.Add(time.Minute)}
	key := Checked{Principal: identity.Principal{UserID: "u-key", APIKeyID: "k1", Roles: []string{RoleUser}, Scopes: []string{"profile:read"}}}
	call := func(method func(context.Context, metadata.MD) error, credential, vouch string, withService bool) codes.Code {
		md := metadata.Pairs("authorization", "Bearer "+credential)
		if vouch != "" {
			md.Set(VouchHeader, vouch)
		}
		if withService {
			md.Set(ServiceTokenHeader, serviceToken)
		}
		return status.Code(method(context.Background(), md))
	}
	var seen *authv1.User
	getMe := func(ctx context.Context, md metadata.MD) error {
		resp, err := b.client.GetCurrentUser(metadata.NewOutgoingContext(ctx, md), &authv1.GetCurrentUserRequest{})
		seen = resp.GetUser()
		return err
	}
	listUsers := func(ctx context.Context, md metadata.MD) error {
		_, err := b.client.ListUsers(metadata.NewOutgoingContext(ctx, md), &authv1.ListUsersRequest{})
		return err
	}
	createKey := func(ctx context.Context, md metadata.MD) error {
		_, err := b.client.CreateApiKey(metadata.NewOutgoingContext(ctx, md), &authv1.CreateApiKeyRequest{DisplayName: "ci", Scopes: []string{"profile:read"}})
		return err
	}

	require.Equal(t, codes.OK, call(getMe, token, vouchFor(user, token), true))
	require.Equal(t, "u-1", seen.GetId(), "the vouched principal reaches the handler")
	require.Equal(t, codes.OK, call(getMe, "bpk_reader", vouchFor(key, "bpk_reader"), true), "a vouched key needs no introspection here")
	require.Equal(t, "u-key", seen.GetId())

	// Every RPC's policy is still the service's to enforce.
	require.Equal(t, codes.PermissionDenied, call(listUsers, token, vouchFor(user, token), true), "not an admin")
	require.Equal(t, codes.PermissionDenied, call(createKey, "bpk_reader", vouchFor(key, "bpk_reader"), true), "a key on an unscoped method")

	// Only our edge vouches, and only for the credential it came with.
	require.Equal(t, codes.Unauthenticated, call(getMe, token, vouchFor(user, token), false), "a vouch without the service credential")
	require.Equal(t, codes.Unauthenticated, call(getMe, token, "v1.1.1.dTE.forged", true), "a forged vouch")
	other, _ := b.login(t, RoleUser)
	require.Equal(t, codes.Unauthenticated, call(getMe, other, vouchFor(user, token), true), "a vouch for another credential")
	require.Equal(t, codes.Unauthenticated, call(getMe, "bpk_reader", "", true), "without a vouch the key is checked here, and unknown")

	// Without a vouch, a direct call is verified in full.
	require.Equal(t, codes.OK, call(getMe, token, "", false))
	require.NoError(t, b.sessions.End(context.Background(), sid, time.Now().Add(time.Hour)))
	require.Equal(t, codes.Unauthenticated, call(getMe, token, "", true), "the ended session, checked here")

	// A vouch whose liveness answer is too old sends the service to the mirror itself;
	// a fresh one is taken as the edge's answer, which is at most VouchFreshFor old.
	stale := user
	stale.LiveAt = b.now.Add(-VouchFreshFor - time.Millisecond)
	require.Equal(t, codes.Unauthenticated, call(getMe, token, vouchFor(stale, token), true), "stale: the service finds the session ended")
	require.Equal(t, codes.OK, call(getMe, token, vouchFor(user, token), true), "fresh: the edge's answer stands")
}

func TestEdgeVouchesForWhomItAuthenticatedAndTakesNoVouch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tokens, vouches := newTestVouches(t, nil)
	in, err := NewInterceptor(InterceptorConfig{
		Tokens: b.verifier, APIKeys: fakeKeys{"bpk_reader": {UserID: "u-key", APIKeyID: "k1", Roles: []string{RoleUser}, Scopes: []string{"profile:read"}}},
		Services: tokens, Vouches: vouches, IssueVouches: true, Logger: slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	token, sid := b.login(t, RoleUser)

	{
		// An API key is never vouched for: the service asks the key's authority itself.
		ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer bpk_reader"))
		ctx, _, err = in.authorize(ctx, authv1.AuthService_GetCurrentUser_FullMethodName)
		require.NoError(t, err)
		require.Empty(t, VouchFromContext(ctx))
	}
	for _, credential := range []string{token} {
		ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+credential))
		ctx, _, err = in.authorize(ctx, authv1.AuthService_GetCurrentUser_FullMethodName)
		require.NoError(t, err)
		c, err := vouches.Check(VouchFromContext(ctx), credential)
		require.NoError(t, err, "the vouch to forward checks against the caller's credential")
		p, _ := identity.FromContext(ctx)
		// The token's expiry stays at the edge, whose stream interceptor ends a stream
		// when it passes; the vouch has its own, shorter, expiry.
		p.Expiry = time.Time{}
		require.Equal(t, p, c.Principal)
	}
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+token))
	ctx, _, err = in.authorize(ctx, authv1.AuthService_GetCurrentUser_FullMethodName)
	require.NoError(t, err)
	c, err := vouches.Check(VouchFromContext(ctx), token)
	require.NoError(t, err)
	require.Equal(t, sid, c.Principal.SessionID)
	require.WithinDuration(t, time.Now(), c.LiveAt, time.Second, "says when the session was found live")

	// A caller who brings a vouch of its own, even a genuine one for another call, gets
	// nothing from it at the edge: the credential is checked.
	forged, ok := vouches.Mint(Checked{Principal: identity.Principal{UserID: "u-1", SessionID: sid}}, "garbage")
	require.True(t, ok)
	st, err := tokens.Mint("gateway")
	require.NoError(t, err)
	ctx = metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer garbage", VouchHeader, forged, ServiceTokenHeader, st))
	_, _, err = in.authorize(ctx, authv1.AuthService_GetCurrentUser_FullMethodName)
	require.Equal(t, codes.Unauthenticated, status.Code(err))
}

func TestVerifierRemembersClaimsButAsksAboutTheSession(t *testing.T) {
	t.Parallel()
	b := setup(t)
	token, sid := b.login(t, RoleUser)
	ctx := context.Background()
	for range 3 {
		_, err := b.verifier.Verify(ctx, token)
		require.NoError(t, err)
	}
	require.Equal(t, 1, b.jwks.fetches, "keys fetched once")
	// The signature is checked once per token; its session on every call (CacheFor 0).
	require.NoError(t, b.sessions.End(ctx, sid, time.Now().Add(time.Hour)))
	_, err := b.verifier.Verify(ctx, token)
	require.ErrorIs(t, err, ErrInvalidToken)

	// ForgetSession makes a cached "live" answer be asked again at once.
	v, err := NewVerifier(VerifierConfig{Issuer: testIssuer, Audience: testAudience, Keys: b.jwks, Sessions: b.sessions, CacheFor: time.Hour})
	require.NoError(t, err)
	token, sid = b.login(t, RoleUser)
	_, err = v.Verify(ctx, token)
	require.NoError(t, err)
	require.NoError(t, b.sessions.End(ctx, sid, time.Now().Add(time.Hour)))
	_, err = v.Verify(ctx, token)
	require.NoError(t, err, "the cached answer, within CacheFor")
	v.ForgetSession(sid)
	_, err = v.Verify(ctx, token)
	require.ErrorIs(t, err, ErrInvalidToken)
}
