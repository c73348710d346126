package grpcserver_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/internal/grpcserver"
	"github.com/backplane/backplane/internal/grpctest"
	"github.com/backplane/backplane/internal/logging"
	"github.com/backplane/backplane/internal/requestid"
)

// auth is a stand-in service whose handlers misbehave on purpose.
type auth struct {
	authv1.UnimplementedAuthServiceServer
	started chan struct{}
	release chan struct{}
	sawID   chan string
}

func (a *auth) GetCurrentUser(ctx context.Context, _ *authv1.GetCurrentUserRequest) (*authv1.GetCurrentUserResponse, error) {
	a.sawID <- requestid.FromContext(ctx)
	return &authv1.GetCurrentUserResponse{}, nil
}

func (a *auth) ListSessions(context.Context, *authv1.ListSessionsRequest) (*authv1.ListSessionsResponse, error) {
	panic("boom")
}

func (a *auth) DeleteSession(context.Context, *authv1.DeleteSessionRequest) (*authv1.DeleteSessionResponse, error) {
	return nil, fault.Wrap(fault.NotFound, errors.New("select from sessions: no rows"), "session not found")
}

func (a *auth) Logout(context.Context, *authv1.LogoutRequest) (*authv1.LogoutResponse, error) {
	return nil, errors.New("dial tcp 10.1.2.3:5432: connection refused")
}

// ListApiKeys blocks until released, or until its context ends, as a well-behaved
// handler of a slow call does.
func (a *auth) ListApiKeys(ctx context.Context, _ *authv1.ListApiKeysRequest) (*authv1.ListApiKeysResponse, error) {
	close(a.started)
	select {
	case <-a.release:
		return &authv1.ListApiKeysResponse{}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type harness struct {
	srv    *grpcserver.Server
	client authv1.AuthServiceClient
	health healthpb.HealthClient
	svc    *auth
	logs   *lockedBuffer
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// setup serves the stand-in through the harness every gRPC test uses, which builds its
// server with grpcserver.New: these tests are of that server.
func setup(t *testing.T) *harness {
	t.Helper()
	logs := &lockedBuffer{}
	svc := &auth{started: make(chan struct{}), release: make(chan struct{}), sawID: make(chan string, 1)}
	s := grpctest.Start(t, func(r grpc.ServiceRegistrar) { authv1.RegisterAuthServiceServer(r, svc) },
		grpctest.WithLogger(logging.New(logs, logging.Options{})))
	return &harness{srv: s.GRPC, client: authv1.NewAuthServiceClient(s.Conn), health: healthpb.NewHealthClient(s.Conn), svc: svc, logs: logs}
}

func TestConfigIsValidated(t *testing.T) {
	t.Parallel()
	_, err := grpcserver.New(grpcserver.Config{})
	require.Error(t, err)
}

func TestRequestIDIsKeptOrMinted(t *testing.T) {
	t.Parallel()
	h := setup(t)
	var header metadata.MD
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-request-id", "abc-1")
	_, err := h.client.GetCurrentUser(ctx, &authv1.GetCurrentUserRequest{}, grpc.Header(&header))
	require.NoError(t, err)
	require.Equal(t, "abc-1", <-h.svc.sawID)
	require.Equal(t, []string{"abc-1"}, header.Get("x-request-id"))

	_, err = h.client.GetCurrentUser(context.Background(), &authv1.GetCurrentUserRequest{}, grpc.Header(&header))
	require.NoError(t, err)
	minted := <-h.svc.sawID
	require.Len(t, minted, 32)
	require.Equal(t, []string{minted}, header.Get("x-request-id"))
	require.Contains(t, h.logs.String(), `"request_id":"`+minted+`"`, "the access log carries the request id")
}

func TestPanicsBecomeInternal(t *testing.T) {
	t.Parallel()
	h := setup(t)
	_, err := h.client.ListSessions(context.Background(), &authv1.ListSessionsRequest{})
	require.Equal(t, codes.Internal, status.Code(err))
	require.NotContains(t, status.Convert(err).Message(), "boom")
	require.Contains(t, h.logs.String(), "boom", "the panic is logged for us")

	// The server survived.
	_, err = h.client.GetCurrentUser(context.Background(), &authv1.GetCurrentUserRequest{})
	require.NoError(t, err)
	<-h.svc.sawID
}

func TestErrorsAreNormalisedWithoutLeaking(t *testing.T) {
	t.Parallel()
	h := setup(t)
	_, err := h.client.DeleteSession(context.Background(), &authv1.DeleteSessionRequest{SessionId: "0b7c3f1e-9d7e-4f7a-8a8e-2f1d6f1a9c11"})
	st := status.Convert(err)
	require.Equal(t, codes.NotFound, st.Code())
	require.Equal(t, "session not found", st.Message())

	_, err = h.client.Logout(context.Background(), &authv1.LogoutRequest{})
	st = status.Convert(err)
	require.Equal(t, codes.Internal, st.Code())
	require.NotContains(t, st.Message(), "10.1.2.3")
	require.Contains(t, h.logs.String(), "10.1.2.3", "the hidden cause is logged")
}

func TestRequestsAreValidated(t *testing.T) {
	t.Parallel()
	h := setup(t)
	_, err := h.client.DeleteSession(context.Background(), &authv1.DeleteSessionRequest{SessionId: "not-a-uuid"})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
}

func TestShutdownDrainsInFlightCallsAndStopsServing(t *testing.T) {
	t.Parallel()
	h := setup(t)
	resp, err := h.health.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "backplane.auth.v1.AuthService"})
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.GetStatus())

	done := make(chan error, 1)
	go func() {
		_, err := h.client.ListApiKeys(context.Background(), &authv1.ListApiKeysRequest{})
		done <- err
	}()
	<-h.svc.started

	stopped := make(chan struct{})
	go func() {
		h.srv.Shutdown(context.Background())
		close(stopped)
	}()
	// While the call is in flight the server is draining: it reports NOT_SERVING to
	// anyone who still asks, and does not stop until the call is done.
	require.Eventually(t, func() bool {
		st, ok := h.srv.Health().Check(context.Background(), &healthpb.HealthCheckRequest{Service: "backplane.auth.v1.AuthService"})
		return ok == nil && st.GetStatus() == healthpb.HealthCheckResponse_NOT_SERVING
	}, 5*time.Second, 5*time.Millisecond)
	select {
	case <-stopped:
		t.Fatal("Shutdown returned while a call was in flight")
	default:
	}
	close(h.svc.release)
	require.NoError(t, <-done, "the in-flight call completes")
	<-stopped
}

func TestShutdownCutsCallsPastTheDeadline(t *testing.T) {
	t.Parallel()
	h := setup(t)
	done := make(chan error, 1)
	go func() {
		_, err := h.client.ListApiKeys(context.Background(), &authv1.ListApiKeysRequest{})
		done <- err
	}()
	<-h.svc.started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	h.srv.Shutdown(ctx)
	err := <-done
	require.Error(t, err)
	close(h.svc.release)
}
