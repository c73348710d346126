package notification

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	"github.com/backplane/backplane/internal/grpctest"
	"github.com/backplane/backplane/internal/identity"
	"github.com/backplane/backplane/internal/redistest"
)

// authStandIn answers LookupUser as the auth service does, for the accounts it holds.
// It is served with the real authentication, which lets only services call the
// INTERNAL LookupUser; it checks that the service is notification.
type authStandIn struct {
	authv1.UnimplementedAuthServiceServer
	emails map[string]string
}

func (a *authStandIn) LookupUser(ctx context.Context, req *authv1.LookupUserRequest) (*authv1.LookupUserResponse, error) {
	if name, _ := identity.ServiceFromContext(ctx); name != "notification" {
		return nil, status.Error(codes.PermissionDenied, "only notification looks up addresses here")
	}
	email, ok := a.emails[req.GetUserId()]
	if !ok {
		return nil, status.Error(codes.NotFound, "user not found")
	}
	return &authv1.LookupUserResponse{User: &authv1.User{Id: req.GetUserId(), Email: email}}, nil
}

// startAuthStandIn serves a stand-in auth service. With credentialed, the connection to
// it carries notification's service token, as every connection in the mesh does.
func startAuthStandIn(t *testing.T, emails map[string]string, credentialed bool) *grpc.ClientConn {
	t.Helper()
	a := newTestAuthn(t, redistest.Client(t))
	var opts []grpctest.Option
	if credentialed {
		opts = append(opts, grpctest.WithDialOptions(grpc.WithPerRPCCredentials(a.Services.PerRPCCredentials("notification"))))
	}
	opts = append(opts, grpctest.WithAuthenticator(a.Interceptor))
	s := grpctest.Start(t, func(reg grpc.ServiceRegistrar) {
		authv1.RegisterAuthServiceServer(reg, &authStandIn{emails: emails})
	}, opts...)
	return s.Conn
}

func TestUserRecipientsAreLookedUpInAuthWithAServiceCredential(t *testing.T) {
	t.Parallel()
	known, unknown := uuid.New(), uuid.New()
	conn := startAuthStandIn(t, map[string]string{known.String(): "ada@example.test"}, true)
	b := setup(t)
	deps := b.deps
	deps.Peers = map[string]*grpc.ClientConn{"auth": conn}
	srv, err := New(context.Background(), b.cfg, deps)
	require.NoError(t, err)
	b.server, b.api = srv, b.serve(t, srv)
	startWorkers(t, srv, 1)

	found := b.send(t, &notificationv1.SendRequest{Recipient: &notificationv1.SendRequest_UserId{UserId: known.String()}})
	missing := b.send(t, &notificationv1.SendRequest{Recipient: &notificationv1.SendRequest_UserId{UserId: unknown.String()}})

	v := b.waitForStatus(t, found, statusSent)
	require.Equal(t, "ada@example.test", v.Address)
	require.Equal(t, "ada@example.test", b.sendgrid.sentFor(found)[0].To)
	v = b.waitForStatus(t, missing, statusFailed)
	require.Equal(t, "the recipient has no account", v.Reason)
	require.Equal(t, 1, v.Attempts)
}

func TestAddressLookupWithoutCredentialIsRetried(t *testing.T) {
	t.Parallel()
	conn := startAuthStandIn(t, map[string]string{}, false)
	lookup := authAddressBook(conn) // no service credential: auth refuses
	_, err := lookup(context.Background(), uuid.New())
	require.Error(t, err)
	require.False(t, classify(err).permanent, "a refused credential is an operator's mistake to fix, not the recipient's")
}
