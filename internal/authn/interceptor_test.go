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
	"google.golang.org/protobuf/types/known/emptypb"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/grpctest"
	"github.com/backplane/backplane/internal/identity"
)

// echoAuth answers a few AuthService RPCs, one per audience, with what the interceptor
// put in the context.
type echoAuth struct {
	authv1.UnimplementedAuthServiceServer
}

func principalUser(ctx context.Context) *authv1.User {
	p, _ := identity.FromContext(ctx)
	return &authv1.User{Id: p.UserID, DisplayName: p.SessionID + "|" + p.APIKeyID}
}

func (echoAuth) GetJwks(context.Context, *authv1.GetJwksRequest) (*authv1.GetJwksResponse, error) {
	return &authv1.GetJwksResponse{}, nil
}

func (echoAuth) GetCurrentUser(ctx context.Context, _ *authv1.GetCurrentUserRequest) (*authv1.GetCurrentUserResponse, error) {
	u := principalUser(ctx)
	u.Email, _ = identity.ServiceFromContext(ctx) // the service that relayed the call, if any
	return &authv1.GetCurrentUserResponse{User: u}, nil
}

func (echoAuth) CreateApiKey(context.Context, *authv1.CreateApiKeyRequest) (*authv1.CreateApiKeyResponse, error) {
	return &authv1.CreateApiKeyResponse{}, nil
}

func (echoAuth) ListUsers(context.Context, *authv1.ListUsersRequest) (*authv1.ListUsersResponse, error) {
	return &authv1.ListUsersResponse{}, nil
}

func (echoAuth) LookupUser(ctx context.Context, _ *authv1.LookupUserRequest) (*authv1.LookupUserResponse, error) {
	name, _ := identity.ServiceFromContext(ctx)
	return &authv1.LookupUserResponse{User: &authv1.User{Id: name}}, nil
}

// fakeKeys is an introspector over a fixed table, standing in for the auth service.
type fakeKeys map[string]identity.Principal

func (f fakeKeys) Introspect(_ context.Context, secret string) (identity.Principal, error) {
	if p, ok := f[secret]; ok {
		return p, nil
	}
	return identity.Principal{}, ErrInvalidToken
}

// lookupRequest is a valid request for the INTERNAL RPC LookupUser: calls that pass the
// interceptor go on to validation.
var lookupRequest = &authv1.LookupUserRequest{Key: &authv1.LookupUserRequest_Email{Email: "ada@example.com"}}

type interceptorBundle struct {
	*testBundle
	conn     *grpc.ClientConn
	client   authv1.AuthServiceClient
	services *HMACServiceTokens
}

func setupInterceptor(t *testing.T, keys fakeKeys) *interceptorBundle {
	t.Helper()
	b := setup(t)
	services, err := NewHMACServiceTokens([]byte("0123456789abcdef0123456789abcdef"), time.Minute, nil)
	require.NoError(t, err)
	in, err := NewInterceptor(InterceptorConfig{
		Tokens:   b.verifier,
		APIKeys:  NewCachedIntrospector(keys, time.Second, nil),
		Services: services,
		Logger:   slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)

	// The real server chain: what a caller meets is the interceptor in its slot, after
	// request ids and recovery and before validation.
	srv := grpctest.Start(t, func(s grpc.ServiceRegistrar) {
		authv1.RegisterAuthServiceServer(s, echoAuth{})
		registerTwoScopeService(t, s)
	}, grpctest.WithAuthenticator(in))
	return &interceptorBundle{testBundle: b, conn: srv.Conn, client: authv1.NewAuthServiceClient(srv.Conn), services: services}
}

func TestInterceptorPolicyMatrix(t *testing.T) {
	t.Parallel()
	keys := fakeKeys{
		"bpk_reader":   {UserID: "u-key", APIKeyID: "k1", Roles: []string{RoleUser}, Scopes: []string{"profile:read"}},
		"bpk_writer":   {UserID: "u-key", APIKeyID: "k2", Roles: []string{RoleUser}, Scopes: []string{"profile:write"}},
		"bpk_adminkey": {UserID: "u-admin", APIKeyID: "k3", Roles: []string{RoleUser, RoleAdmin}, Scopes: []string{"profile:read", "profile:write"}},
		"bpk_both":     {UserID: "u-key", APIKeyID: "k4", Roles: []string{RoleUser}, Scopes: twoScopeScopes},
	}
	b := setupInterceptor(t, keys)
	userToken, userSession := b.login(t, RoleUser)
	adminToken, _ := b.login(t, RoleUser, RoleAdmin)
	endedToken, endedSession := b.login(t, RoleUser, RoleAdmin)
	require.NoError(t, b.sessions.End(context.Background(), endedSession, time.Now().Add(time.Hour)))
	serviceToken, err := b.services.Mint("gateway")
	require.NoError(t, err)

	bearer := func(tok string) metadata.MD { return metadata.Pairs("authorization", "Bearer "+tok) }
	none := metadata.MD{}

	type call func(ctx context.Context, opts ...grpc.CallOption) error
	getJwks := func(ctx context.Context, o ...grpc.CallOption) error {
		_, err := b.client.GetJwks(ctx, &authv1.GetJwksRequest{}, o...)
		return err
	}
	getMe := func(ctx context.Context, o ...grpc.CallOption) error {
		_, err := b.client.GetCurrentUser(ctx, &authv1.GetCurrentUserRequest{}, o...)
		return err
	}
	createKey := func(ctx context.Context, o ...grpc.CallOption) error {
		_, err := b.client.CreateApiKey(ctx, &authv1.CreateApiKeyRequest{DisplayName: "ci", Scopes: []string{"profile:read"}}, o...)
		return err
	}
	listUsers := func(ctx context.Context, o ...grpc.CallOption) error {
		_, err := b.client.ListUsers(ctx, &authv1.ListUsersRequest{}, o...)
		return err
	}
	lookup := func(ctx context.Context, o ...grpc.CallOption) error {
		_, err := b.client.LookupUser(ctx, lookupRequest, o...)
		return err
	}
	twoScopes := func(ctx context.Context, o ...grpc.CallOption) error {
		return b.conn.Invoke(ctx, twoScopeMethod, &emptypb.Empty{}, &emptypb.Empty{}, o...)
	}

	cases := []struct {
		name      string
		call      call
		md        metadata.MD
		want      codes.Code
		challenge string
	}{
		{"public, anonymous", getJwks, none, codes.OK, ""},
		{"public, stale token ignored", getJwks, bearer("garbage"), codes.OK, ""},
		{"user, anonymous", getMe, none, codes.Unauthenticated, challengeMissing},
		{"user, garbage token", getMe, bearer("garbage"), codes.Unauthenticated, challengeInvalid},
		{"user, other scheme", getMe, metadata.Pairs("authorization", "Basic dTpw"), codes.Unauthenticated, challengeInvalid},
		{"user, valid token", getMe, bearer(userToken), codes.OK, ""},
		{"user, ended session", getMe, bearer(endedToken), codes.Unauthenticated, challengeInvalid},
		{"user, key with the scope", getMe, bearer("bpk_reader"), codes.OK, ""},
		{"user, key without the scope", getMe, bearer("bpk_writer"), codes.PermissionDenied, challengeInsufficient},
		{"user, unknown key", getMe, bearer("bpk_nope"), codes.Unauthenticated, challengeInvalid},
		{"user, service token is not a user", getMe, metadata.Pairs(ServiceTokenHeader, serviceToken), codes.Unauthenticated, challengeMissing},
		// A method listing several scopes needs every one of them: listing more narrows
		// who may call, as least privilege wants, and never widens it.
		{"two-scope method, token", twoScopes, bearer(userToken), codes.OK, ""},
		{"two-scope method, key with both scopes", twoScopes, bearer("bpk_both"), codes.OK, ""},
		{"two-scope method, key with the first only", twoScopes, bearer("bpk_reader"), codes.PermissionDenied, challengeInsufficient},
		{"two-scope method, key with the second only", twoScopes, bearer("bpk_writer"), codes.PermissionDenied, challengeInsufficient},
		{"unscoped user method, token", createKey, bearer(userToken), codes.OK, ""},
		{"unscoped user method, any key", createKey, bearer("bpk_adminkey"), codes.PermissionDenied, challengeInsufficient},
		{"admin, anonymous", listUsers, none, codes.Unauthenticated, challengeMissing},
		{"admin, user token", listUsers, bearer(userToken), codes.PermissionDenied, ""},
		{"admin, admin token", listUsers, bearer(adminToken), codes.OK, ""},
		{"admin, admin's key", listUsers, bearer("bpk_adminkey"), codes.PermissionDenied, challengeInsufficient},
		{"admin, ended admin session", listUsers, bearer(endedToken), codes.Unauthenticated, challengeInvalid},
		{"internal, anonymous", lookup, none, codes.Unauthenticated, ""},
		{"internal, admin token", lookup, bearer(adminToken), codes.PermissionDenied, ""},
		{"internal, admin key", lookup, bearer("bpk_adminkey"), codes.PermissionDenied, ""},
		{"internal, forged service token", lookup, metadata.Pairs(ServiceTokenHeader, "v1.gateway.9999999999.AAAA"), codes.Unauthenticated, ""},
		{"internal, service token", lookup, metadata.Pairs(ServiceTokenHeader, serviceToken), codes.OK, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := metadata.NewOutgoingContext(context.Background(), tc.md)
			var header metadata.MD
			err := tc.call(ctx, grpc.Header(&header))
			require.Equal(t, tc.want, status.Code(err), "error: %v", err)
			if tc.challenge == "" {
				require.Empty(t, header.Get(WWWAuthenticateHeader))
			} else {
				require.Equal(t, []string{tc.challenge}, header.Get(WWWAuthenticateHeader))
			}
		})
	}

	// The principal reaches the handler.
	ctx := metadata.NewOutgoingContext(context.Background(), bearer(userToken))
	resp, err := b.client.GetCurrentUser(ctx, &authv1.GetCurrentUserRequest{})
	require.NoError(t, err)
	require.Equal(t, userSession+"|", resp.GetUser().GetDisplayName())
	ctx = metadata.NewOutgoingContext(context.Background(), bearer("bpk_reader"))
	resp, err = b.client.GetCurrentUser(ctx, &authv1.GetCurrentUserRequest{})
	require.NoError(t, err)
	require.Equal(t, "u-key", resp.GetUser().GetId())
	require.Equal(t, "|k1", resp.GetUser().GetDisplayName())
	ctx = metadata.NewOutgoingContext(context.Background(), metadata.Pairs(ServiceTokenHeader, serviceToken))
	lresp, err := b.client.LookupUser(ctx, lookupRequest)
	require.NoError(t, err)
	require.Equal(t, "gateway", lresp.GetUser().GetId())
}

func TestInterceptorDeniesMethodsWithoutPolicy(t *testing.T) {
	t.Parallel()
	b := setup(t)
	in, err := NewInterceptor(InterceptorConfig{Tokens: b.verifier, APIKeys: fakeKeys{}, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	token, _ := b.login(t, RoleUser, RoleAdmin)
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+token))

	_, _, err = in.authorize(ctx, "/backplane.auth.v1.AuthService/NoSuchMethod")
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	_, _, err = in.authorize(ctx, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	_, _, err = in.authorize(context.Background(), "/grpc.health.v1.Health/Check")
	require.NoError(t, err)
	// Without a service authenticator no INTERNAL call passes.
	_, _, err = in.authorize(context.Background(), authv1.AuthService_LookupUser_FullMethodName)
	require.Equal(t, codes.Unauthenticated, status.Code(err))

	// Asked again, the answers come from the policies package access keeps, the same
	// (access's TestLookupKeepsOnlyLinkedMethods: made-up names are not kept).
	_, _, err = in.authorize(ctx, "/backplane.auth.v1.AuthService/NoSuchMethod")
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	_, _, err = in.authorize(context.Background(), authv1.AuthService_LookupUser_FullMethodName)
	require.Equal(t, codes.Unauthenticated, status.Code(err))
}

// fakeStream is the least of a server stream for driving the stream interceptor.
type fakeStream struct {
	grpc.ServerStream
	ctx    context.Context
	header metadata.MD
}

func (s *fakeStream) Context() context.Context { return s.ctx }
func (s *fakeStream) SetHeader(md metadata.MD) error {
	s.header = metadata.Join(s.header, md)
	return nil
}

func TestStreamInterceptorEnforcesPolicy(t *testing.T) {
	t.Parallel()
	b := setup(t)
	in, err := NewInterceptor(InterceptorConfig{Tokens: b.verifier, APIKeys: fakeKeys{}, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	info := &grpc.StreamServerInfo{FullMethod: authv1.AuthService_GetCurrentUser_FullMethodName}
	var seen identity.Principal
	handler := func(_ any, ss grpc.ServerStream) error {
		seen, _ = identity.FromContext(ss.Context())
		return nil
	}

	anon := &fakeStream{ctx: context.Background()}
	err = in.Stream()(nil, anon, info, handler)
	require.Equal(t, codes.Unauthenticated, status.Code(err))
	require.Equal(t, []string{challengeMissing}, anon.header.Get(WWWAuthenticateHeader))

	token, sid := b.login(t, RoleUser)
	signed := &fakeStream{ctx: metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+token))}
	require.NoError(t, in.Stream()(nil, signed, info, handler))
	require.Equal(t, sid, seen.SessionID)
}

func TestCachedIntrospectorForgetsWithinTTL(t *testing.T) {
	t.Parallel()
	now := time.Now()
	keys := fakeKeys{"bpk_live": {UserID: "u", APIKeyID: "k"}}
	cache := NewCachedIntrospector(keys, time.Second, func() time.Time { return now })
	ctx := context.Background()

	_, err := cache.Introspect(ctx, "bpk_live")
	require.NoError(t, err)
	delete(keys, "bpk_live") // the key is deleted at the auth service
	_, err = cache.Introspect(ctx, "bpk_live")
	require.NoError(t, err, "cached for up to a second")
	now = now.Add(time.Second)
	_, err = cache.Introspect(ctx, "bpk_live")
	require.ErrorIs(t, err, ErrInvalidToken, "gone once the second has passed")

	_, err = cache.Introspect(ctx, "eyJhbGciOi.not-a-key")
	require.ErrorIs(t, err, ErrInvalidToken)
}

func TestInterceptorAnswersUnavailableWhileTheMirrorIsRebuilt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	token, _ := b.login(t, RoleUser)
	// A verifier over a mirror that has lost everything, the ready marker included.
	lost := newTestSessions(t)
	verifier, err := NewVerifier(VerifierConfig{Issuer: testIssuer, Audience: testAudience, Keys: b.jwks, Sessions: lost})
	require.NoError(t, err)
	in, err := NewInterceptor(InterceptorConfig{Tokens: verifier, APIKeys: fakeKeys{}, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)

	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+token))
	_, _, err = in.authorize(ctx, authv1.AuthService_GetCurrentUser_FullMethodName)
	require.Equal(t, codes.Unavailable, status.Code(err), "not logged out: retry shortly")
}

// A user's call that our edge relays carries the edge's service credential too; handlers
// may then believe what only the edge can tell them. A forged one changes nothing.
func TestInterceptorNotesTheRelayingService(t *testing.T) {
	t.Parallel()
	b := setupInterceptor(t, fakeKeys{})
	token, _ := b.login(t, RoleUser)
	serviceToken, err := b.services.Mint("gateway")
	require.NoError(t, err)
	relayedBy := func(md metadata.MD) string {
		t.Helper()
		resp, err := b.client.GetCurrentUser(metadata.NewOutgoingContext(context.Background(), md), &authv1.GetCurrentUserRequest{})
		require.NoError(t, err)
		return resp.GetUser().GetEmail()
	}
	require.Equal(t, "gateway", relayedBy(metadata.Pairs("authorization", "Bearer "+token, ServiceTokenHeader, serviceToken)))
	require.Empty(t, relayedBy(metadata.Pairs("authorization", "Bearer "+token, ServiceTokenHeader, "forged")))
	require.Empty(t, relayedBy(metadata.Pairs("authorization", "Bearer "+token)))
}
