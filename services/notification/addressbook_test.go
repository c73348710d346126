package notification

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	"github.com/backplane/backplane/internal/authn"
)

const testServiceSecret = "a service token secret of 32 bytes or more"

// authStandIn answers LookupUser as the auth service does, for the accounts it holds,
// and only for callers with a valid service credential.
type authStandIn struct {
	authv1.UnimplementedAuthServiceServer
	tokens *authn.HMACServiceTokens
	emails map[string]string
}

func (a *authStandIn) LookupUser(ctx context.Context, req *authv1.LookupUserRequest) (*authv1.LookupUserResponse, error) {
	if name, err := a.tokens.AuthenticateService(ctx); err != nil || name != "notification" {
		return nil, status.Error(codes.Unauthenticated, "a service credential is required")
	}
	email, ok := a.emails[req.GetUserId()]
	if !ok {
		return nil, status.Error(codes.NotFound, "user not found")
	}
	return &authv1.LookupUserResponse{User: &authv1.User{Id: req.GetUserId(), Email: email}}, nil
}

// startAuthStandIn serves a stand-in auth service. With credentialed, the connection to
// it carries a service token, as every connection in the mesh does.
func startAuthStandIn(t *testing.T, emails map[string]string, credentialed bool) *grpc.ClientConn {
	t.Helper()
	tokens, err := authn.NewHMACServiceTokens([]byte(testServiceSecret), time.Minute, nil)
	require.NoError(t, err)
	srv := grpc.NewServer()
	authv1.RegisterAuthServiceServer(srv, &authStandIn{tokens: tokens, emails: emails})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if credentialed {
		opts = append(opts, grpc.WithPerRPCCredentials(tokens.PerRPCCredentials("notification")))
	}
	conn, err := grpc.NewClient(lis.Addr().String(), opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
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
	b.server = srv
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
