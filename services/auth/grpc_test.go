package auth

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/authn"
	"github.com/backplane/backplane/internal/grpcserver"
	"github.com/backplane/backplane/internal/validation"
)

// grpcBundle serves the auth service on the real server builder with the enforcement
// interceptor in its slot, wired as a process running the auth service would wire it.
type grpcBundle struct {
	*testBundle
	client   authv1.AuthServiceClient
	services *authn.HMACServiceTokens
}

func setupGRPC(t *testing.T) *grpcBundle { return setupGRPCWith(t) }

func setupGRPCWith(t testing.TB, opts ...option) *grpcBundle {
	t.Helper()
	b := setup(t, opts...)
	services, err := authn.NewHMACServiceTokens([]byte(testServiceTokenSecret), time.Minute, nil)
	require.NoError(t, err)
	in, err := authn.NewInterceptor(authn.InterceptorConfig{
		Tokens:   b.srv.Verifier(),
		APIKeys:  authn.NewCachedIntrospector(b.srv.APIKeys(), time.Second, nil),
		Services: services,
		Logger:   slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	validator, err := validation.New()
	require.NoError(t, err)
	gs, err := grpcserver.New(grpcserver.Config{
		Logger:         slog.New(slog.DiscardHandler),
		TracerProvider: tracenoop.NewTracerProvider(),
		MeterProvider:  metricnoop.NewMeterProvider(),
		Propagator:     propagation.TraceContext{},
		Validator:      validator,
		Authenticate: grpcserver.Interceptors{
			Unary:  []grpc.UnaryServerInterceptor{in.Unary()},
			Stream: []grpc.StreamServerInterceptor{in.Stream()},
		},
	})
	require.NoError(t, err)
	authv1.RegisterAuthServiceServer(gs.Registrar(), b.srv)
	lis := bufconn.Listen(1 << 20)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		gs.Shutdown(ctx)
	})
	conn, err := grpc.NewClient("passthrough:///auth",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return &grpcBundle{testBundle: b, client: authv1.NewAuthServiceClient(conn), services: services}
}

func bearer(token string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
}

func TestOverGRPC(t *testing.T) {
	t.Parallel()
	b := setupGRPC(t)
	email := uniqueEmail()
	const pw = "a long enough passphrase"

	signup, err := b.client.SignUp(context.Background(), &authv1.SignUpRequest{Email: email, Password: pw, DisplayName: "Grace"})
	require.NoError(t, err)
	access := signup.GetTokens().GetAccessToken()

	_, err = b.client.SignUp(context.Background(), &authv1.SignUpRequest{Email: email, Password: pw, DisplayName: "Grace"})
	require.Equal(t, codes.AlreadyExists, status.Code(err))

	var header metadata.MD
	_, err = b.client.GetCurrentUser(context.Background(), &authv1.GetCurrentUserRequest{}, grpc.Header(&header))
	require.Equal(t, codes.Unauthenticated, status.Code(err))
	require.Equal(t, []string{`Bearer realm="backplane"`}, header.Get("www-authenticate"))

	me, err := b.client.GetCurrentUser(bearer(access), &authv1.GetCurrentUserRequest{})
	require.NoError(t, err)
	require.Equal(t, email, me.GetUser().GetEmail())

	// A PATCH that tries to grant itself a role.
	_, err = b.client.UpdateCurrentUser(bearer(access), &authv1.UpdateCurrentUserRequest{
		User:       &authv1.User{DisplayName: "Grace", Roles: []authv1.Role{authv1.Role_ROLE_ADMIN}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"roles"}},
	})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	_, err = b.client.ListUsers(bearer(access), &authv1.ListUsersRequest{})
	require.Equal(t, codes.PermissionDenied, status.Code(err))

	// INTERNAL RPCs: a user's token never opens them; a service token does.
	_, err = b.client.LookupUser(bearer(access), &authv1.LookupUserRequest{Key: &authv1.LookupUserRequest_Email{Email: email}})
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	svc, err := b.services.Mint("gateway")
	require.NoError(t, err)
	svcCtx := metadata.AppendToOutgoingContext(context.Background(), authn.ServiceTokenHeader, svc)
	found, err := b.client.LookupUser(svcCtx, &authv1.LookupUserRequest{Key: &authv1.LookupUserRequest_Email{Email: email}})
	require.NoError(t, err)
	require.Equal(t, signup.GetUser().GetId(), found.GetUser().GetId())

	// An API key works for the scopes it holds, and stops within a second of deletion.
	key, err := b.client.CreateApiKey(bearer(access), &authv1.CreateApiKeyRequest{DisplayName: "ci", Scopes: []string{"profile:read"}})
	require.NoError(t, err)
	_, err = b.client.GetCurrentUser(bearer(key.GetSecret()), &authv1.GetCurrentUserRequest{})
	require.NoError(t, err)
	_, err = b.client.UpdateCurrentUser(bearer(key.GetSecret()), &authv1.UpdateCurrentUserRequest{User: &authv1.User{DisplayName: "x"}})
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	_, err = b.client.DeleteApiKey(bearer(access), &authv1.DeleteApiKeyRequest{ApiKeyId: key.GetApiKey().GetId()})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := b.client.GetCurrentUser(bearer(key.GetSecret()), &authv1.GetCurrentUserRequest{})
		return status.Code(err) == codes.Unauthenticated
	}, 1100*time.Millisecond, 50*time.Millisecond)

	// Logout rejects the session's token at once.
	_, err = b.client.Logout(bearer(access), &authv1.LogoutRequest{})
	require.NoError(t, err)
	_, err = b.client.GetCurrentUser(bearer(access), &authv1.GetCurrentUserRequest{}, grpc.Header(&header))
	require.Equal(t, codes.Unauthenticated, status.Code(err))
	require.Equal(t, []string{`Bearer realm="backplane", error="invalid_token"`}, header.Get("www-authenticate"))
}

func TestLockoutOverGRPC(t *testing.T) {
	t.Parallel()
	b := setupGRPC(t)
	email := uniqueEmail()
	for range b.cfg.LoginMaxFailures {
		_, err := b.client.Login(context.Background(), &authv1.LoginRequest{Email: email, Password: "wrong"})
		require.Equal(t, codes.Unauthenticated, status.Code(err))
		require.Equal(t, "the email or password is wrong", status.Convert(err).Message())
	}
	var header metadata.MD
	_, err := b.client.Login(context.Background(), &authv1.LoginRequest{Email: email, Password: "wrong"}, grpc.Header(&header))
	st := status.Convert(err)
	require.Equal(t, codes.ResourceExhausted, st.Code())
	require.Len(t, header.Get("retry-after"), 1)
	require.Len(t, st.Details(), 1)
}
