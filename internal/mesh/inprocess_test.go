package mesh

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	"github.com/backplane/backplane/internal/authn"
	"github.com/backplane/backplane/internal/config"
	"github.com/backplane/backplane/internal/grpccodec"
	"github.com/backplane/backplane/internal/identity"
	"github.com/backplane/backplane/internal/logging"
	"github.com/backplane/backplane/internal/redistest"
	"github.com/backplane/backplane/internal/service"
	"github.com/backplane/backplane/internal/telemetry"
)

// stand-in handlers behind the real chain: they report what the chain let through.
type localAuth struct {
	authv1.UnimplementedAuthServiceServer
	// served receives the context of each GetCurrentUser the chain let through.
	served chan context.Context
}

func (a localAuth) GetCurrentUser(ctx context.Context, _ *authv1.GetCurrentUserRequest) (*authv1.GetCurrentUserResponse, error) {
	p, ok := identity.FromContext(ctx)
	if !ok {
		return nil, status.Error(codes.Internal, "the chain let a call through without a principal")
	}
	if v := metadata.ValueFromIncomingContext(ctx, "x-test-plain-error"); len(v) > 0 {
		// A handler that hands back its context's end as a plain error, as code
		// returning ctx.Err() from a store would.
		return nil, context.DeadlineExceeded
	}
	if a.served != nil {
		a.served <- ctx
	}
	_ = grpc.SetHeader(ctx, metadata.Pairs("x-handler", "header", "x-trace-id", trace.SpanContextFromContext(ctx).TraceID().String(),
		"x-baggage", baggage.FromContext(ctx).String()))
	_ = grpc.SetTrailer(ctx, metadata.Pairs("x-handler", "trailer"))
	return &authv1.GetCurrentUserResponse{User: &authv1.User{Id: p.UserID}}, nil
}

func (localAuth) LookupUser(ctx context.Context, _ *authv1.LookupUserRequest) (*authv1.LookupUserResponse, error) {
	svc, err := identity.CallingService(ctx)
	if err != nil {
		return nil, err
	}
	st, err := status.New(codes.NotFound, "no such user, asked by "+svc).WithDetails(&errdetails.ErrorInfo{Reason: "USER_NOT_FOUND", Domain: "backplane"})
	if err != nil {
		return nil, err
	}
	return nil, st.Err()
}

type localNotifications struct {
	notificationv1.UnimplementedNotificationServiceServer
	// ended receives the cause with which each stream's context ended.
	ended chan error
}

func (n localNotifications) StreamNotifications(_ *notificationv1.StreamNotificationsRequest, ss grpc.ServerStreamingServer[notificationv1.StreamNotificationsResponse]) error {
	// The end is reported however the handler leaves: a Send that raced the client's
	// cancel may report the cancel even though its message was delivered (the
	// in-process channel checks the context after handing the message over), and a
	// handler that then returned without reporting left the test waiting for nothing.
	defer func() {
		<-ss.Context().Done()
		n.ended <- ss.Context().Err()
	}()
	if err := ss.Send(&notificationv1.StreamNotificationsResponse{}); err != nil {
		return err
	}
	<-ss.Context().Done()
	return ss.Context().Err()
}

type localBundle struct {
	conn    grpc.ClientConnInterface // as the edge holds it: the process's service token on every call
	bare    *localConn               // the channel with no service credential
	vouch   func(userID, credential string) string
	ended   chan error
	served  chan context.Context
	issuer  *authn.Issuer
	metrics http.Handler // the process's /metrics
}

// setupLocal serves stand-in auth and notification handlers in process, behind the
// chain and the checks `backplane dev` gives every service: mutual TLS's certificates
// minted, the process's service token, vouches signed with its secret.
func setupLocal(t *testing.T) *localBundle {
	t.Helper()
	ctx := t.Context()
	tel, err := telemetry.New(ctx, telemetry.Config{Pieces: []string{Gateway, "auth"}})
	require.NoError(t, err)
	p, err := NewProcess(logging.New(io.Discard, logging.Options{}), tel)
	require.NoError(t, err)
	t.Cleanup(func() { p.Shutdown(context.Background(), 5*time.Second) })

	cfg := config.Config{DataDir: t.TempDir()}
	creds, err := p.newDevCredentials(cfg, []string{"auth"})
	require.NoError(t, err)
	require.NotEmpty(t, creds.certs, "dev runs mutual TLS, whose check an in-process call must pass too")
	rdb := redistest.Client(t)
	chk, err := p.newChecker(ctx, creds, nil, rdb, "https://backplane.test")
	require.NoError(t, err)

	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	keys, err := authn.NewKeySet(authn.SigningKey{ID: authn.KeyID(pub), Private: priv})
	require.NoError(t, err)
	issuer, err := authn.NewIssuer(authn.IssuerConfig{Issuer: "https://backplane.test", Audience: authn.Audience, TTL: time.Minute}, keys)
	require.NoError(t, err)
	verifier, err := authn.NewVerifier(authn.VerifierConfig{
		Issuer: "https://backplane.test", Audience: authn.Audience,
		Keys: authn.IssuerJWKS{Issuer: issuer}, Sessions: authn.NewLiveSessions(rdb),
	})
	require.NoError(t, err)

	b := &localBundle{ended: make(chan error, 1), served: make(chan context.Context, 1), issuer: issuer, metrics: tel.MetricsHandler()}
	svc := service.Loaded{Definition: service.Definition{Name: "auth"}, Start: func(context.Context, service.Deps) (*service.Instance, error) {
		return &service.Instance{
			Tokens:  verifier,
			APIKeys: authn.GRPCIntrospector{},
			Register: func(reg grpc.ServiceRegistrar) {
				authv1.RegisterAuthServiceServer(reg, localAuth{served: b.served})
				notificationv1.RegisterNotificationServiceServer(reg, localNotifications{ended: b.ended})
			},
		}, nil
	}}
	ls, err := listen(ctx, "127.0.0.1:0")
	require.NoError(t, err)
	var lc *localConn
	lc, b.conn = p.local(Gateway, "auth", creds)
	b.bare = lc
	require.NoError(t, p.startService(ctx, svc, service.Deps{}, chk, ls[0], lc))

	vouches := creds.tokens.Vouches()
	b.vouch = func(userID, credential string) string {
		v, ok := vouches.Mint(authn.Checked{Principal: identity.Principal{UserID: userID}, Expires: time.Now().Add(time.Minute)}, credential)
		require.True(t, ok)
		return v
	}
	return b
}

// calling returns ctx carrying the metadata the edge forwards: the caller's credential
// and, when vouch is set, the edge's vouch for it.
func calling(ctx context.Context, credential, vouch string) context.Context {
	md := metadata.Pairs("authorization", "Bearer "+credential)
	if vouch != "" {
		md.Set(authn.VouchHeader, vouch)
	}
	return metadata.NewOutgoingContext(ctx, md)
}

// A service served in process enforces its policy as over the network: it takes the
// edge's vouch only for the credential the vouch was minted for, only from a caller
// holding the process's service credential, and verifies anything else itself.
func TestInProcessCallsRunTheServicesChecks(t *testing.T) {
	t.Parallel()
	b := setupLocal(t)
	auth := authv1.NewAuthServiceClient(b.conn)
	const user = "0b6b7c1e-7a43-4a6e-9c1e-2b8f5e0c9d11"

	t.Run("vouched", func(t *testing.T) {
		var header, trailer metadata.MD
		resp, err := auth.GetCurrentUser(calling(t.Context(), "token-a", b.vouch(user, "token-a")),
			&authv1.GetCurrentUserRequest{}, grpc.Header(&header), grpc.Trailer(&trailer))
		require.NoError(t, err)
		<-b.served
		require.Equal(t, user, resp.GetUser().GetId())
		require.Equal(t, []string{"header"}, header.Get("x-handler"))
		require.Equal(t, []string{"trailer"}, trailer.Get("x-handler"))
	})
	t.Run("vouched, the call's context ends with the call", func(t *testing.T) {
		_, err := auth.GetCurrentUser(calling(t.Context(), "token-a", b.vouch(user, "token-a")), &authv1.GetCurrentUserRequest{})
		require.NoError(t, err)
		served := <-b.served
		require.ErrorIs(t, served.Err(), context.Canceled, "a server's context ends when its call does")
	})
	t.Run("unvouched, its credential checked and refused", func(t *testing.T) {
		_, err := auth.GetCurrentUser(calling(t.Context(), "not-a-token", ""), &authv1.GetCurrentUserRequest{})
		require.Equal(t, codes.Unauthenticated, status.Code(err), err)
	})
	t.Run("the caller's own principal does not reach the service", func(t *testing.T) {
		// The edge's context holds the principal the edge authenticated; the service
		// must establish its own from what the call carries.
		ctx := identity.WithPrincipal(calling(t.Context(), "not-a-token", ""), identity.Principal{UserID: user})
		_, err := auth.GetCurrentUser(ctx, &authv1.GetCurrentUserRequest{})
		require.Equal(t, codes.Unauthenticated, status.Code(err), err)
	})
	t.Run("a vouch for another user's credential", func(t *testing.T) {
		_, err := auth.GetCurrentUser(calling(t.Context(), "token-b", b.vouch(user, "token-a")), &authv1.GetCurrentUserRequest{})
		require.Equal(t, codes.Unauthenticated, status.Code(err), err)
	})
	t.Run("a vouch from a caller without the service credential", func(t *testing.T) {
		bare := authv1.NewAuthServiceClient(b.bare)
		_, err := bare.GetCurrentUser(calling(t.Context(), "token-a", b.vouch(user, "token-a")), &authv1.GetCurrentUserRequest{})
		require.Equal(t, codes.Unauthenticated, status.Code(err), err)
	})
	t.Run("a user where only services may call", func(t *testing.T) {
		tok, _, err := b.issuer.Issue(user, "1f0c8a52-5d0e-4d43-a8f6-3a7f8f1b2c33", nil)
		require.NoError(t, err)
		bare := authv1.NewAuthServiceClient(b.bare)
		_, err = bare.LookupUser(calling(t.Context(), tok, b.vouch(user, tok)), &authv1.LookupUserRequest{Key: &authv1.LookupUserRequest_UserId{UserId: user}})
		require.Contains(t, []codes.Code{codes.Unauthenticated, codes.PermissionDenied}, status.Code(err), err)
	})
	t.Run("an internal call, its status details kept", func(t *testing.T) {
		_, err := auth.LookupUser(t.Context(), &authv1.LookupUserRequest{Key: &authv1.LookupUserRequest_UserId{UserId: user}})
		st := status.Convert(err)
		require.Equal(t, codes.NotFound, st.Code(), err)
		require.Contains(t, st.Message(), "asked by "+devCaller, "the caller named by the in-process peer and the service token")
		require.Len(t, st.Details(), 1)
		info, ok := st.Details()[0].(*errdetails.ErrorInfo)
		require.True(t, ok)
		require.Equal(t, "USER_NOT_FOUND", info.GetReason())
	})
}

// A server stream served in process ends on the service's side when its client
// cancels, as a network stream's handler sees its context end.
func TestInProcessStreamEndsWhenTheClientCancels(t *testing.T) {
	t.Parallel()
	b := setupLocal(t)
	const user = "0b6b7c1e-7a43-4a6e-9c1e-2b8f5e0c9d11"
	ctx, cancel := context.WithCancel(calling(t.Context(), "token-a", b.vouch(user, "token-a")))
	defer cancel()
	stream, err := notificationv1.NewNotificationServiceClient(b.conn).StreamNotifications(ctx, &notificationv1.StreamNotificationsRequest{})
	require.NoError(t, err)
	_, err = stream.Recv()
	require.NoError(t, err, "the stream is open")
	cancel()
	select {
	case err := <-b.ended:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(5 * time.Second):
		t.Fatal("the service's stream did not end when its client cancelled")
	}
	_, err = stream.Recv()
	require.Equal(t, codes.Canceled, status.Code(err), err)

	// The stream is measured as the service's, from its start, not since the year 1
	// (the in-process channel reports no begin time at a call's end).
	var seconds float64
	require.Eventually(t, func() bool {
		var ok bool
		seconds, ok = serverCallSeconds(t, b, "StreamNotifications")
		return ok
	}, 5*time.Second, 10*time.Millisecond, "the stream is measured as the service's")
	require.Less(t, seconds, 60.0)
}

// The file codec's call option, which the edge's downloads carry (gateway/routes.go), is
// harmless in process: the in-process channel encodes no message and ignores it.
func TestInProcessStreamTakesTheFileCodecOption(t *testing.T) {
	t.Parallel()
	b := setupLocal(t)
	const user = "0b6b7c1e-7a43-4a6e-9c1e-2b8f5e0c9d11"
	ctx, cancel := context.WithCancel(calling(t.Context(), "token-a", b.vouch(user, "token-a")))
	defer cancel()
	stream, err := notificationv1.NewNotificationServiceClient(b.conn).StreamNotifications(ctx, &notificationv1.StreamNotificationsRequest{}, grpccodec.CallOption())
	require.NoError(t, err)
	_, err = stream.Recv()
	require.NoError(t, err, "the stream is open and its first message arrived")
}

// A unary call served in process carries the caller's trace and baggage, so the
// service's span hangs under the edge's, and is measured in the service's rpc.server.call.duration
// for as long as it took, as dashboards and the latency alert read it.
func TestInProcessUnaryCallIsTracedAndMeasuredAsTheServices(t *testing.T) {
	t.Parallel()
	b := setupLocal(t)
	const user = "0b6b7c1e-7a43-4a6e-9c1e-2b8f5e0c9d11"
	traceID := trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	caller := trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: trace.SpanID{0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}, TraceFlags: trace.FlagsSampled})
	ctx := trace.ContextWithSpanContext(calling(t.Context(), "token-a", b.vouch(user, "token-a")), caller)
	member, err := baggage.NewMember("tenant", "acme")
	require.NoError(t, err)
	bag, err := baggage.New(member)
	require.NoError(t, err)
	ctx = baggage.ContextWithBaggage(ctx, bag)
	var header metadata.MD
	_, err = authv1.NewAuthServiceClient(b.conn).GetCurrentUser(ctx, &authv1.GetCurrentUserRequest{}, grpc.Header(&header))
	require.NoError(t, err)
	<-b.served
	require.Equal(t, []string{traceID.String()}, header.Get("x-trace-id"), "the service's span is in the caller's trace")
	require.Equal(t, []string{"tenant=acme"}, header.Get("x-baggage"), "the caller's baggage reaches the service, as it would over the network")

	seconds, ok := serverCallSeconds(t, b, "GetCurrentUser")
	require.True(t, ok, "the call is measured as the service's")
	require.Less(t, seconds, 60.0, "measured from the call's start")
}

// serverCallSeconds reads from the process's /metrics the total seconds the service
// (auth) reports having spent in method's calls.
func serverCallSeconds(t *testing.T, b *localBundle, method string) (float64, bool) {
	t.Helper()
	rec := httptest.NewRecorder()
	b.metrics.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/metrics", nil))
	for line := range strings.Lines(rec.Body.String()) {
		if strings.HasPrefix(line, "rpc_server_call_duration_seconds_sum{") && strings.Contains(line, "/"+method+`"`) && strings.Contains(line, `service_name="backplane-auth"`) {
			seconds, err := strconv.ParseFloat(strings.TrimSpace(line[strings.LastIndexByte(line, ' '):]), 64)
			require.NoError(t, err, line)
			return seconds, true
		}
	}
	return 0, false
}

// A handler's plain error reaches an in-process caller with the code a gRPC server
// would give it over the network: a context's end is DEADLINE_EXCEEDED, not UNKNOWN.
func TestInProcessUnaryCallCodesAPlainErrorAsAServerWould(t *testing.T) {
	t.Parallel()
	b := setupLocal(t)
	const user = "0b6b7c1e-7a43-4a6e-9c1e-2b8f5e0c9d11"
	ctx := metadata.AppendToOutgoingContext(calling(t.Context(), "token-a", b.vouch(user, "token-a")), "x-test-plain-error", "deadline")
	_, err := authv1.NewAuthServiceClient(b.conn).GetCurrentUser(ctx, &authv1.GetCurrentUserRequest{})
	require.Equal(t, codes.DeadlineExceeded, status.Code(err), "%v", err)
}
