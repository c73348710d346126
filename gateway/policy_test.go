package gateway_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/metric/noop"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/backplane/backplane/gateway"
	accessv1 "github.com/backplane/backplane/gen/backplane/access/v1"
	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/access"
	"github.com/backplane/backplane/internal/authn"
	"github.com/backplane/backplane/internal/clientip"
	"github.com/backplane/backplane/internal/grpcserver"
	"github.com/backplane/backplane/internal/identity"
	"github.com/backplane/backplane/internal/ratelimit"
	"github.com/backplane/backplane/internal/redistest"
	"github.com/backplane/backplane/internal/scenario"
	"github.com/backplane/backplane/services"
)

const (
	testIssuer = "https://backplane.test"
	// apiKeyProfile is an API key holding only the profile:read scope.
	apiKeyProfile = "bpk_profile_read_only"
)

// keys stands in for the auth service's API-key introspection.
type keys map[string]identity.Principal

func (k keys) Introspect(_ context.Context, secret string) (identity.Principal, error) {
	if p, ok := k[secret]; ok {
		return p, nil
	}
	return identity.Principal{}, authn.ErrInvalidToken
}

// secured is an edge enforcing real access policies with real tokens, sessions in the
// real Redis, and optionally the real rate limiter.
type secured struct {
	*harness
	issuer   *authn.Issuer
	sessions *authn.LiveSessions
	services *authn.HMACServiceTokens
}

func setupSecured(t testing.TB, limit *gateway.RateLimitConfig, opts ...func(*gateway.Config)) *secured {
	t.Helper()
	ctx := context.Background()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	ks, err := authn.NewKeySet(authn.SigningKey{ID: authn.KeyID(pub), Private: priv})
	require.NoError(t, err)
	issuer, err := authn.NewIssuer(authn.IssuerConfig{Issuer: testIssuer, Audience: authn.Audience, TTL: 15 * time.Minute}, ks)
	require.NoError(t, err)
	rdb := redistest.Client(t)
	prefix := "gwtest:" + rand.Text() + ":"
	t.Cleanup(func() { deleteKeys(rdb, prefix) })
	sessions := authn.NewLiveSessions(rdb, authn.WithKeyPrefix(prefix))
	ready, err := sessions.Rebuild(ctx, func(context.Context, string) ([]authn.LiveSession, error) { return nil, nil })
	require.NoError(t, err)
	require.True(t, ready)
	verifier, err := authn.NewVerifier(authn.VerifierConfig{
		Issuer: testIssuer, Audience: authn.Audience, Keys: authn.IssuerJWKS{Issuer: issuer}, Sessions: sessions,
	})
	require.NoError(t, err)
	services, err := authn.NewHMACServiceTokens([]byte("0123456789abcdef0123456789abcdef"), time.Minute, nil)
	require.NoError(t, err)
	in, err := authn.NewInterceptor(authn.InterceptorConfig{
		Tokens:   verifier,
		APIKeys:  keys{apiKeyProfile: {UserID: "0b7c3f1e-9d7e-4f7a-8a8e-2f1d6f1a9c11", APIKeyID: "k1", Scopes: []string{"profile:read"}, Roles: []string{"user"}}},
		Services: services,
		Logger:   discard(),
	})
	require.NoError(t, err)
	h := setup(t, func(c *gateway.Config) {
		c.Server.Authenticate = grpcserver.Interceptors{Unary: []grpc.UnaryServerInterceptor{in.Unary()}, Stream: []grpc.StreamServerInterceptor{in.Stream()}}
		c.RateLimit = limit
		resolver, err := clientip.NewResolver([]string{"127.0.0.0/8"})
		require.NoError(t, err)
		c.ClientIP = resolver
		for _, o := range opts {
			o(c)
		}
	})
	return &secured{harness: h, issuer: issuer, sessions: sessions, services: services}
}

func deleteKeys(rdb redis.UniversalClient, prefix string) {
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		rdb.Del(ctx, iter.Val())
	}
}

// token signs in a fresh user with a live session.
func (s *secured) token(t testing.TB, roles ...string) string {
	t.Helper()
	sid := rand.Text()
	require.NoError(t, s.sessions.MarkLive(context.Background(), sid, time.Now().Add(time.Hour)))
	tok, _, err := s.issuer.Issue("0b7c3f1e-9d7e-4f7a-8a8e-"+fmt.Sprintf("%012x", mustRand(t)), sid, roles)
	require.NoError(t, err)
	return tok
}

func mustRand(t testing.TB) int64 {
	n, err := rand.Int(rand.Reader, big.NewInt(1<<46))
	require.NoError(t, err)
	return n.Int64()
}

// restCall sends a request for an RPC along its HTTP mapping, with placeholder path
// values and an empty body.
func (s *secured) restCall(t *testing.T, md protoreflect.MethodDescriptor, header http.Header) int {
	t.Helper()
	rule := proto.GetExtension(md.Options(), annotations.E_Http).(*annotations.HttpRule)
	var method, path string
	switch p := rule.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		method, path = http.MethodGet, p.Get
	case *annotations.HttpRule_Post:
		method, path = http.MethodPost, p.Post
	case *annotations.HttpRule_Put:
		method, path = http.MethodPut, p.Put
	case *annotations.HttpRule_Patch:
		method, path = http.MethodPatch, p.Patch
	case *annotations.HttpRule_Delete:
		method, path = http.MethodDelete, p.Delete
	}
	for strings.Contains(path, "{") {
		i, j := strings.Index(path, "{"), strings.Index(path, "}")
		path = path[:i] + "0b7c3f1e-9d7e-4f7a-8a8e-2f1d6f1a9c11" + path[j+1:]
	}
	body := ""
	if rule.GetBody() != "" {
		body = "{}"
	}
	req, err := http.NewRequestWithContext(t.Context(), method, s.rest.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Do(req)
	if err != nil && strings.Contains(err.Error(), "Client.Timeout") {
		return http.StatusOK // a stream that opened and stayed open: it was admitted
	}
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// grpcCall invokes an RPC through the gRPC front door with an empty request.
func (s *secured) grpcCall(t *testing.T, ctx context.Context, md protoreflect.MethodDescriptor) codes.Code {
	t.Helper()
	full := "/" + string(md.Parent().FullName()) + "/" + string(md.Name())
	in, err := protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName())
	require.NoError(t, err)
	out, err := protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if !md.IsStreamingClient() && !md.IsStreamingServer() {
		return status.Code(s.grpc.Invoke(ctx, full, in.New().Interface(), out.New().Interface()))
	}
	cs, err := s.grpc.NewStream(ctx, &grpc.StreamDesc{ClientStreams: md.IsStreamingClient(), ServerStreams: md.IsStreamingServer()}, full)
	if err != nil {
		return status.Code(err)
	}
	_ = cs.SendMsg(in.New().Interface())
	_ = cs.CloseSend()
	err = cs.RecvMsg(out.New().Interface())
	if errors.Is(err, io.EOF) {
		return codes.OK
	}
	return status.Code(err)
}

// TestPolicyMatrix checks every RPC of every service, on both front doors, against the
// audience its proto declares: nothing is protected by a hand-kept list.
func TestPolicyMatrix(t *testing.T) {
	t.Parallel()
	s := setupSecured(t, nil)
	userToken := s.token(t, "user")
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	withToken := func(tok string) context.Context {
		return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok)
	}
	serviceToken, err := s.services.Mint("gateway-test")
	require.NoError(t, err)
	asService := metadata.AppendToOutgoingContext(context.Background(), authn.ServiceTokenHeader, serviceToken)

	checked := 0
	for _, e := range services.APIs() {
		methods := e.Service.Methods()
		for i := range methods.Len() {
			md := methods.Get(i)
			name := string(md.FullName())
			checked++
			// One subtest per RPC, named for it, so a failure says which RPC let what through.
			t.Run(name, func(t *testing.T) {
				switch access.PolicyOf(md).GetAudience() {
				case accessv1.Audience_AUDIENCE_INTERNAL:
					// Unreachable at the edge, whatever the credential.
					for _, ctx := range []context.Context{context.Background(), withToken(s.token(t, "admin")), asService} {
						require.Equal(t, codes.Unimplemented, s.grpcCall(t, ctx, md), name)
					}
				case accessv1.Audience_AUDIENCE_PUBLIC:
					require.NotEqual(t, http.StatusUnauthorized, s.restCall(t, md, nil), name)
					require.NotEqual(t, codes.Unauthenticated, s.grpcCall(t, context.Background(), md), name)
				case accessv1.Audience_AUDIENCE_USER:
					require.Equal(t, http.StatusUnauthorized, s.restCall(t, md, nil), name)
					require.Equal(t, codes.Unauthenticated, s.grpcCall(t, context.Background(), md), name)
					require.Equal(t, http.StatusUnauthorized, s.restCall(t, md, bearer("not-a-token")), name)
					code := s.restCall(t, md, bearer(userToken))
					require.NotContains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, code, name)
				case accessv1.Audience_AUDIENCE_ADMIN:
					require.Equal(t, http.StatusUnauthorized, s.restCall(t, md, nil), name)
					require.Equal(t, http.StatusForbidden, s.restCall(t, md, bearer(userToken)), name)
					require.Equal(t, codes.PermissionDenied, s.grpcCall(t, withToken(userToken), md), name)
					require.NotEqual(t, http.StatusForbidden, s.restCall(t, md, bearer(s.token(t, "admin"))), name)
				default:
					t.Fatalf("%s declares no audience", name)
				}
			})
		}
	}
	require.Greater(t, checked, 40)
}

func TestUnauthenticatedAnswersCarryAChallenge(t *testing.T) {
	t.Parallel()
	s := setupSecured(t, nil)
	t.Run("no credential", func(t *testing.T) {
		resp, body := s.do(t, http.MethodGet, "/v1/users/me", "", nil)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		require.Equal(t, `Bearer realm="backplane"`, resp.Header.Get("WWW-Authenticate"))
		require.EqualValues(t, codes.Unauthenticated, body["code"])
	})
	t.Run("a forged token", func(t *testing.T) {
		resp, _ := s.do(t, http.MethodGet, "/v1/users/me", "", http.Header{"Authorization": {"Bearer forged.jwt.token"}})
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		require.Contains(t, resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`)
	})
}

func TestAPIKeyScopes(t *testing.T) {
	t.Parallel()
	s := setupSecured(t, nil)
	key := http.Header{"Authorization": {"Bearer " + apiKeyProfile}}
	resp, _ := s.do(t, http.MethodGet, "/v1/users/me", "", key)
	require.Equal(t, http.StatusOK, resp.StatusCode, "profile:read opens GetCurrentUser")
	resp, _ = s.do(t, http.MethodPatch, "/v1/users/me", `{"displayName":"x"}`, key)
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "but not UpdateCurrentUser")
	require.Contains(t, resp.Header.Get("WWW-Authenticate"), "insufficient_scope")
	resp, _ = s.do(t, http.MethodPost, "/v1/api-keys", `{"displayName":"x","scopes":["profile:read"]}`, key)
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "an API key cannot mint API keys")
}

func limiter(t testing.TB, rdb redis.UniversalClient, mode ratelimit.FailureMode, anonymous, authenticated string) *gateway.RateLimitConfig {
	t.Helper()
	// Leases on, as the mesh runs the edge. The Redis timeout is generous, not the
	// production 100 ms: on a loaded machine a slow answer would otherwise hand the
	// decision to the local floor (or, for sign-in calls, answer 503) and flake the test.
	l, err := ratelimit.New(ratelimit.Config{
		Redis: rdb, FailureMode: mode, Lease: true, RedisTimeout: 5 * time.Second,
		MeterProvider: noop.NewMeterProvider(), Logger: discard(),
	})
	require.NoError(t, err)
	anon, err := ratelimit.ParseLimit(anonymous)
	require.NoError(t, err)
	auth, err := ratelimit.ParseLimit(authenticated)
	require.NoError(t, err)
	return &gateway.RateLimitConfig{Limiter: l, Policy: ratelimit.StaticPolicy{Anonymous: anon, Authenticated: auth}}
}

// randomIP is a client address no other test uses, so budgets in the shared Redis do
// not collide.
func randomIP(t testing.TB) string {
	return fmt.Sprintf("2001:db8:%x:%x::1", mustRand(t)&0xffff, mustRand(t)&0xffff)
}

func TestRateLimitOverREST(t *testing.T) {
	t.Parallel()
	s := setupSecured(t, limiter(t, redistest.Client(t), ratelimit.FailOpen, "3/m", "2/m"))
	ip := http.Header{"X-Forwarded-For": {randomIP(t)}}
	scenario.Step(t, "an address spends its budget", func(t *testing.T) {
		for i := range 3 {
			resp, _ := s.do(t, http.MethodGet, "/v1/plans", "", ip)
			require.NotEqual(t, http.StatusTooManyRequests, resp.StatusCode, "call %d", i)
			require.Equal(t, "3", resp.Header.Get("RateLimit-Limit"))
			require.Equal(t, fmt.Sprint(2-i), resp.Header.Get("RateLimit-Remaining"))
			require.NotEmpty(t, resp.Header.Get("RateLimit-Reset"))
		}
	})
	scenario.Step(t, "then it is refused", func(t *testing.T) {
		resp, body := s.do(t, http.MethodGet, "/v1/plans", "", ip)
		require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
		require.NotEmpty(t, resp.Header.Get("Retry-After"))
		require.Equal(t, "0", resp.Header.Get("RateLimit-Remaining"))
		require.EqualValues(t, codes.ResourceExhausted, body["code"])
	})
	scenario.Step(t, "another address has its own budget", func(t *testing.T) {
		resp, _ := s.do(t, http.MethodGet, "/v1/plans", "", http.Header{"X-Forwarded-For": {randomIP(t)}})
		require.Contains(t, []int{http.StatusOK, http.StatusNotImplemented}, resp.StatusCode)
	})
	scenario.Step(t, "a signed-in user spends their own, not the address's", func(t *testing.T) {
		resp, _ := s.do(t, http.MethodGet, "/v1/users/me", "", http.Header{"X-Forwarded-For": ip["X-Forwarded-For"], "Authorization": {"Bearer " + s.token(t)}})
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "2", resp.Header.Get("RateLimit-Limit"))
	})
}

func TestRateLimitOverGRPCAndCost(t *testing.T) {
	t.Parallel()
	s := setupSecured(t, limiter(t, redistest.Client(t), ratelimit.FailOpen, "10/m", "10/m"))
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-forwarded-for", randomIP(t))
	// SignUp costs 10 of the 10: the first is admitted, the second is not.
	client := authv1.NewAuthServiceClient(s.grpc)
	req := &authv1.SignUpRequest{Email: randomEmail(), Password: "correct horse", DisplayName: "Ada"}
	scenario.Step(t, "the first sign-up spends the whole budget", func(t *testing.T) {
		var header metadata.MD
		_, err := client.SignUp(ctx, req, grpc.Header(&header))
		require.NoError(t, err)
		require.Equal(t, []string{"0"}, header.Get("ratelimit-remaining"))
	})
	scenario.Step(t, "the second is refused, with when to come back", func(t *testing.T) {
		var trailer metadata.MD
		_, err := client.SignUp(ctx, req, grpc.Trailer(&trailer))
		st := status.Convert(err)
		require.Equal(t, codes.ResourceExhausted, st.Code())
		require.NotEmpty(t, trailer.Get("retry-after"), "the values travel in trailers on errors")
		require.Equal(t, []string{"10"}, trailer.Get("ratelimit-limit"))
		require.NotEmpty(t, st.Details(), "a RetryInfo says when to come back")
	})
}

func TestRateLimitWithRedisDown(t *testing.T) {
	t.Parallel()
	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 50 * time.Millisecond})
	t.Cleanup(func() { _ = down.Close() })
	ip := http.Header{"X-Forwarded-For": {randomIP(t)}}

	t.Run("failing open", func(t *testing.T) {
		open := setupSecured(t, limiter(t, down, ratelimit.FailOpen, "100/m", "100/m"))
		resp, _ := open.do(t, http.MethodGet, "/v1/users/me", "", http.Header{"X-Forwarded-For": ip["X-Forwarded-For"], "Authorization": {"Bearer " + open.token(t)}})
		require.Equal(t, http.StatusOK, resp.StatusCode, "failing open, the in-process limiter decides")
		require.Equal(t, "100", resp.Header.Get("RateLimit-Limit"))
		resp, _ = open.do(t, http.MethodPost, "/v1/auth/login", `{"email":"ada@example.com","password":"x"}`, ip)
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "login always fails closed")
	})
	t.Run("failing closed", func(t *testing.T) {
		closed := setupSecured(t, limiter(t, down, ratelimit.FailClosed, "100/m", "100/m"))
		resp, _ := closed.do(t, http.MethodGet, "/v1/users/me", "", http.Header{"Authorization": {"Bearer " + closed.token(t)}})
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	})
}
