package grpcserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/internal/grpcserver"
	"github.com/backplane/backplane/internal/grpctest"
	"github.com/backplane/backplane/internal/identity"
	"github.com/backplane/backplane/internal/logging"
	"github.com/backplane/backplane/internal/requestid"
)

// serviceMark stands in for a service credential: the authentication step below takes
// a call carrying it for one relayed by the named service, as authn's does for a valid
// service token.
const serviceMark = "x-test-service"

// markedServices is the authentication step of the tests: a caller with serviceMark is
// that service, anyone else a client.
type markedServices struct{}

func (markedServices) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		if v := md.Get(serviceMark); len(v) == 1 {
			ctx = identity.WithService(ctx, v[0])
		}
		return handler(ctx, req)
	}
}

func (markedServices) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return handler(srv, ss)
	}
}

// backend is the service behind the edge.
type backend struct {
	authv1.UnimplementedAuthServiceServer
	fail error
}

func (b *backend) GetCurrentUser(context.Context, *authv1.GetCurrentUserRequest) (*authv1.GetCurrentUserResponse, error) {
	return &authv1.GetCurrentUserResponse{}, b.fail
}

func (b *backend) LookupUser(context.Context, *authv1.LookupUserRequest) (*authv1.LookupUserResponse, error) {
	return &authv1.LookupUserResponse{}, nil
}

// relay is the edge: it passes GetCurrentUser on to the backend with its service mark
// and the request id, as the edge forwards a client's call.
type relay struct {
	authv1.UnimplementedAuthServiceServer
	next authv1.AuthServiceClient
}

func (r *relay) GetCurrentUser(ctx context.Context, req *authv1.GetCurrentUserRequest) (*authv1.GetCurrentUserResponse, error) {
	out := metadata.Pairs(serviceMark, "gateway", "x-request-id", requestid.FromContext(ctx))
	return r.next.GetCurrentUser(metadata.NewOutgoingContext(ctx, out), req)
}

type logLine struct {
	Level     string `json:"level"`
	Msg       string `json:"msg"`
	Service   string `json:"grpc.service"`
	Method    string `json:"grpc.method"`
	Code      string `json:"grpc.code"`
	TimeMS    string `json:"grpc.time_ms"`
	Error     string `json:"grpc.error"`
	RelayedBy string `json:"grpc.relayed_by"`
	RequestID string `json:"request_id"`
}

// accessLines returns the access-log lines written to logs.
func accessLines(t *testing.T, logs string) []logLine {
	t.Helper()
	var out []logLine
	for raw := range strings.SplitSeq(strings.TrimSpace(logs), "\n") {
		if raw == "" {
			continue
		}
		var l logLine
		require.NoError(t, json.Unmarshal([]byte(raw), &l), raw)
		if l.Msg == "finished call" {
			out = append(out, l)
		}
	}
	return out
}

// chain starts the backend and the edge in front of it, both logging to logs at level.
func chain(t *testing.T, level slog.Level, fail error) (edge, direct authv1.AuthServiceClient, logs *lockedBuffer) {
	t.Helper()
	logs = &lockedBuffer{}
	log := logging.New(logs, logging.Options{Level: level})
	svc := grpctest.Start(t, func(r grpc.ServiceRegistrar) { authv1.RegisterAuthServiceServer(r, &backend{fail: fail}) },
		grpctest.WithLogger(log), grpctest.WithAuthenticator(markedServices{}))
	front := grpctest.Start(t, func(r grpc.ServiceRegistrar) {
		authv1.RegisterAuthServiceServer(r, &relay{next: authv1.NewAuthServiceClient(svc.Conn)})
	}, grpctest.WithLogger(log), grpctest.WithAuthenticator(markedServices{}))
	return authv1.NewAuthServiceClient(front.Conn), authv1.NewAuthServiceClient(svc.Conn), logs
}

// A call the edge relays is logged once at info, by the edge, as the client saw it; the
// service's line for it is at debug, naming who relayed it.
func TestARelayedCallIsLoggedOnce(t *testing.T) {
	t.Parallel()
	edge, _, logs := chain(t, slog.LevelInfo, nil)
	ctx := metadata.AppendToOutgoingContext(t.Context(), "x-request-id", "relayed-1")
	_, err := edge.GetCurrentUser(ctx, &authv1.GetCurrentUserRequest{})
	require.NoError(t, err)

	lines := accessLines(t, logs.String())
	require.Len(t, lines, 1, logs.String())
	l := lines[0]
	require.Equal(t, "INFO", l.Level)
	require.Equal(t, "backplane.auth.v1.AuthService", l.Service)
	require.Equal(t, "GetCurrentUser", l.Method)
	require.Equal(t, "OK", l.Code)
	require.Equal(t, "relayed-1", l.RequestID)
	require.Empty(t, l.RelayedBy, "the edge's own line is of the client's call")
	require.Regexp(t, `^\d+\.\d{3}$`, l.TimeMS)

	// At debug level the service's line is there too.
	edge, _, logs = chain(t, slog.LevelDebug, nil)
	ctx = metadata.AppendToOutgoingContext(t.Context(), "x-request-id", "relayed-2")
	_, err = edge.GetCurrentUser(ctx, &authv1.GetCurrentUserRequest{})
	require.NoError(t, err)
	lines = accessLines(t, logs.String())
	require.Len(t, lines, 2, logs.String())
	require.Equal(t, "DEBUG", lines[0].Level, "the service finishes first")
	require.Equal(t, "gateway", lines[0].RelayedBy)
	require.Equal(t, "relayed-2", lines[0].RequestID)
	require.Equal(t, "INFO", lines[1].Level)
}

// A direct call has no edge to log it: the service logs it at info. So does a call a
// service makes of an INTERNAL method, which is its own call, not one it relays.
func TestDirectAndInternalCallsAreLoggedByTheService(t *testing.T) {
	t.Parallel()
	_, direct, logs := chain(t, slog.LevelInfo, nil)
	_, err := direct.GetCurrentUser(t.Context(), &authv1.GetCurrentUserRequest{})
	require.NoError(t, err)
	asService := metadata.AppendToOutgoingContext(t.Context(), serviceMark, "usage")
	_, err = direct.LookupUser(asService, &authv1.LookupUserRequest{Key: &authv1.LookupUserRequest_UserId{UserId: "0b7c3f1e-9d7e-4f7a-8a8e-2f1d6f1a9c11"}})
	require.NoError(t, err)

	lines := accessLines(t, logs.String())
	require.Len(t, lines, 2, logs.String())
	require.Equal(t, "GetCurrentUser", lines[0].Method)
	require.Equal(t, "INFO", lines[0].Level)
	require.Empty(t, lines[0].RelayedBy)
	require.Equal(t, "LookupUser", lines[1].Method)
	require.Equal(t, "INFO", lines[1].Level)
	require.Empty(t, lines[1].RelayedBy)
}

// A relayed call that fails on our side is logged by the service as well as by the
// edge: the service's line is where its failure is.
func TestARelayedFailureIsLoggedByBoth(t *testing.T) {
	t.Parallel()
	edge, _, logs := chain(t, slog.LevelInfo, fault.Wrap(fault.Unavailable, errors.New("dial tcp 10.1.2.3:5432: connection refused"), "the database is unreachable"))
	_, err := edge.GetCurrentUser(t.Context(), &authv1.GetCurrentUserRequest{})
	require.Equal(t, codes.Unavailable, status.Code(err))

	lines := accessLines(t, logs.String())
	require.Len(t, lines, 2, logs.String())
	for _, l := range lines {
		require.Equal(t, "ERROR", l.Level)
		require.Equal(t, "Unavailable", l.Code)
		require.Equal(t, "the database is unreachable", l.Error)
	}
	require.Equal(t, "gateway", lines[0].RelayedBy)
}

// A claim to be a service that the authentication step does not accept leaves the call
// a direct one, logged at info: a header alone cannot hide a call from the log.
func TestAnUnprovenRelayIsLoggedAsDirect(t *testing.T) {
	t.Parallel()
	_, direct, logs := chain(t, slog.LevelInfo, nil)
	ctx := metadata.AppendToOutgoingContext(t.Context(), "x-backplane-service-token", "forged")
	_, err := direct.GetCurrentUser(ctx, &authv1.GetCurrentUserRequest{})
	require.NoError(t, err)
	lines := accessLines(t, logs.String())
	require.Len(t, lines, 1, logs.String())
	require.Equal(t, "INFO", lines[0].Level)
}

// A stream that a draining service ends, relayed by the front door, is an orderly end
// of shutdown, logged at info by both: the access log reads the status's ErrorInfo
// reason. The same code and message without the reason is a failure.
func TestADrainedStreamIsNoError(t *testing.T) {
	t.Parallel()
	logs := &lockedBuffer{}
	log := logging.New(logs, logging.Options{})
	backendSrv, err := grpcserver.New(func() grpcserver.Config {
		c := grpctest.ServerConfig(t)
		c.Logger = log
		return c
	}())
	require.NoError(t, err)
	opened := make(chan struct{}, 1)
	notificationv1.RegisterNotificationServiceServer(backendSrv.Registrar(), &streamer{opened: opened})
	backendConn := grpctest.Serve(t, backendSrv).Conn
	front := grpctest.Start(t, func(r grpc.ServiceRegistrar) {
		notificationv1.RegisterNotificationServiceServer(r, &streamRelay{next: notificationv1.NewNotificationServiceClient(backendConn)})
	}, grpctest.WithLogger(log))
	client := notificationv1.NewNotificationServiceClient(front.Conn)

	stream, err := client.StreamNotifications(t.Context(), &notificationv1.StreamNotificationsRequest{})
	require.NoError(t, err)
	<-opened
	require.Equal(t, 1, backendSrv.Drain())
	_, err = stream.Recv()
	require.Equal(t, codes.Unavailable, status.Code(err))
	require.Eventually(t, func() bool { return len(accessLines(t, logs.String())) == 2 }, 5*time.Second, 5*time.Millisecond)
	for _, l := range accessLines(t, logs.String()) {
		require.Equal(t, "INFO", l.Level, logs.String())
	}
	require.Equal(t, "Unavailable", accessLines(t, logs.String())[1].Code, "the front door relays the drain")

	// A service that says the same words without the reason has failed.
	stream, err = client.StreamNotifications(metadata.AppendToOutgoingContext(t.Context(), "x-test-imitate", "1"),
		&notificationv1.StreamNotificationsRequest{})
	require.NoError(t, err)
	_, err = stream.Recv()
	require.Equal(t, codes.Unavailable, status.Code(err))
	require.Eventually(t, func() bool { return len(accessLines(t, logs.String())) == 3 }, 5*time.Second, 5*time.Millisecond)
	l := accessLines(t, logs.String())[2]
	require.Equal(t, "ERROR", l.Level)
	require.Equal(t, "the server is shutting down; reconnect", l.Error)
}

// streamer holds a notification stream open until its context ends.
type streamer struct {
	notificationv1.UnimplementedNotificationServiceServer
	opened chan struct{}
}

func (s *streamer) StreamNotifications(_ *notificationv1.StreamNotificationsRequest, ss grpc.ServerStreamingServer[notificationv1.StreamNotificationsResponse]) error {
	s.opened <- struct{}{}
	<-ss.Context().Done()
	return ss.Context().Err()
}

// streamRelay passes a notification stream on from the service behind it, as the front
// door does, or, asked to, imitates a drain's words without its reason.
type streamRelay struct {
	notificationv1.UnimplementedNotificationServiceServer
	next notificationv1.NotificationServiceClient
}

func (r *streamRelay) StreamNotifications(req *notificationv1.StreamNotificationsRequest, ss grpc.ServerStreamingServer[notificationv1.StreamNotificationsResponse]) error {
	if md, _ := metadata.FromIncomingContext(ss.Context()); len(md.Get("x-test-imitate")) > 0 {
		return status.Error(codes.Unavailable, "the server is shutting down; reconnect")
	}
	in, err := r.next.StreamNotifications(ss.Context(), req)
	if err != nil {
		return err
	}
	for {
		m, err := in.Recv()
		if err != nil {
			return err
		}
		if err := ss.Send(m); err != nil {
			return err
		}
	}
}
