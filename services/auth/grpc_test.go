package auth

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
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/authn"
	"github.com/backplane/backplane/internal/grpctest"
	"github.com/backplane/backplane/internal/scenario"
)

// grpcBundle serves the auth service through grpctest: the production chain with the
// real authn interceptor in its slot, checking credentials with auth's own verifier and
// key store, as a process running the auth service wires it.
type grpcBundle struct {
	*testBundle
	// client calls with whatever credential a call's context carries.
	client authv1.AuthServiceClient
	// asGateway calls as the gateway, with the mesh's service credential on every call.
	asGateway authv1.AuthServiceClient
	// gatewayConn is asGateway's connection.
	gatewayConn *grpc.ClientConn
	// in is the authn interceptor the server runs, for an edge in front of it.
	in *authn.Interceptor
}

func setupGRPC(t testing.TB, opts ...option) *grpcBundle {
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
	s := grpctest.Start(t, func(r grpc.ServiceRegistrar) { authv1.RegisterAuthServiceServer(r, b.srv) },
		grpctest.WithAuthenticator(in))
	gw := s.Dial(t, grpc.WithPerRPCCredentials(services.PerRPCCredentials("gateway")))
	return &grpcBundle{
		testBundle:  b,
		client:      authv1.NewAuthServiceClient(s.Conn),
		asGateway:   authv1.NewAuthServiceClient(gw),
		gatewayConn: gw,
		in:          in,
	}
}

// bearer is a context carrying an access token or API key, as a caller sends it.
func bearer(t testing.TB, token string) context.Context {
	return grpctest.Bearer(t.Context(), token)
}

func TestOverGRPC(t *testing.T) {
	t.Parallel()
	b := setupGRPC(t)
	email := uniqueEmail()
	const pw = "a long enough passphrase"
	var signup *authv1.SignUpResponse
	var access string

	scenario.Step(t, "sign up, once per email", func(t *testing.T) {
		var err error
		signup, err = b.client.SignUp(t.Context(), &authv1.SignUpRequest{Email: email, Password: pw, DisplayName: "Grace"})
		require.NoError(t, err)
		access = signup.GetAccessToken()

		_, err = b.client.SignUp(t.Context(), &authv1.SignUpRequest{Email: email, Password: pw, DisplayName: "Grace"})
		require.Equal(t, codes.AlreadyExists, status.Code(err))
	})
	scenario.Step(t, "no credential is challenged", func(t *testing.T) {
		var header metadata.MD
		_, err := b.client.GetCurrentUser(t.Context(), &authv1.GetCurrentUserRequest{}, grpc.Header(&header))
		require.Equal(t, codes.Unauthenticated, status.Code(err))
		require.Equal(t, []string{`Bearer realm="backplane"`}, header.Get("www-authenticate"))
	})
	scenario.Step(t, "the access token opens the account", func(t *testing.T) {
		me, err := b.client.GetCurrentUser(bearer(t, access), &authv1.GetCurrentUserRequest{})
		require.NoError(t, err)
		require.Equal(t, email, me.GetUser().GetEmail())
	})
	scenario.Step(t, "a user grants itself nothing", func(t *testing.T) {
		// A PATCH that tries to grant itself a role.
		_, err := b.client.UpdateCurrentUser(bearer(t, access), &authv1.UpdateCurrentUserRequest{
			User:       &authv1.User{DisplayName: "Grace", Roles: []authv1.Role{authv1.Role_ROLE_ADMIN}},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"roles"}},
		})
		require.Equal(t, codes.InvalidArgument, status.Code(err))
		_, err = b.client.ListUsers(bearer(t, access), &authv1.ListUsersRequest{})
		require.Equal(t, codes.PermissionDenied, status.Code(err))
	})
	scenario.Step(t, "INTERNAL RPCs open to a service, never to a user", func(t *testing.T) {
		lookup := &authv1.LookupUserRequest{Key: &authv1.LookupUserRequest_Email{Email: email}}
		_, err := b.client.LookupUser(bearer(t, access), lookup)
		require.Equal(t, codes.PermissionDenied, status.Code(err))
		found, err := b.asGateway.LookupUser(t.Context(), lookup)
		require.NoError(t, err)
		require.Equal(t, signup.GetUser().GetId(), found.GetUser().GetId())
	})
	scenario.Step(t, "an API key works for its scopes and stops when deleted", func(t *testing.T) {
		b.verify(t, account{user: signup.GetUser()})
		key, err := b.client.CreateApiKey(bearer(t, access), &authv1.CreateApiKeyRequest{DisplayName: "ci", Scopes: []string{"profile:read"}})
		require.NoError(t, err)
		_, err = b.client.GetCurrentUser(bearer(t, key.GetSecret()), &authv1.GetCurrentUserRequest{})
		require.NoError(t, err)
		_, err = b.client.UpdateCurrentUser(bearer(t, key.GetSecret()), &authv1.UpdateCurrentUserRequest{User: &authv1.User{DisplayName: "x"}})
		require.Equal(t, codes.PermissionDenied, status.Code(err))
		_, err = b.client.DeleteApiKey(bearer(t, access), &authv1.DeleteApiKeyRequest{ApiKeyId: key.GetApiKey().GetId()})
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			_, err := b.client.GetCurrentUser(bearer(t, key.GetSecret()), &authv1.GetCurrentUserRequest{})
			return status.Code(err) == codes.Unauthenticated
		}, 1100*time.Millisecond, 50*time.Millisecond, "within a second of its deletion")
	})
	scenario.Step(t, "logout rejects the session's token at once", func(t *testing.T) {
		_, err := b.client.Logout(bearer(t, access), &authv1.LogoutRequest{})
		require.NoError(t, err)
		var header metadata.MD
		_, err = b.client.GetCurrentUser(bearer(t, access), &authv1.GetCurrentUserRequest{}, grpc.Header(&header))
		require.Equal(t, codes.Unauthenticated, status.Code(err))
		require.Equal(t, []string{`Bearer realm="backplane", error="invalid_token"`}, header.Get("www-authenticate"))
	})
}

func TestLockoutOverGRPC(t *testing.T) {
	t.Parallel()
	b := setupGRPC(t)
	email := uniqueEmail()
	for range b.cfg.LoginMaxFailures {
		_, err := b.client.Login(t.Context(), &authv1.LoginRequest{Email: email, Password: "wrong"})
		require.Equal(t, codes.Unauthenticated, status.Code(err))
		require.Equal(t, "the email or password is wrong", status.Convert(err).Message())
	}
	var header metadata.MD
	_, err := b.client.Login(t.Context(), &authv1.LoginRequest{Email: email, Password: "wrong"}, grpc.Header(&header))
	st := status.Convert(err)
	require.Equal(t, codes.ResourceExhausted, st.Code())
	require.Len(t, header.Get("retry-after"), 1)
	require.Len(t, st.Details(), 1)
}
