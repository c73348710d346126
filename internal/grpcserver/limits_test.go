package grpcserver_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/grpcserver"
	"github.com/backplane/backplane/internal/grpctest"
)

// TestMessagesAndMetadataAreBounded: a gRPC client gets no more room than a REST one,
// 1 MiB of message and 64 KiB of metadata, by default.
func TestMessagesAndMetadataAreBounded(t *testing.T) {
	t.Parallel()
	h := setup(t)
	big := strings.Repeat("x", grpcserver.DefaultMaxMessageBytes)

	_, err := h.client.Login(context.Background(), &authv1.LoginRequest{Email: "ada@example.com", Password: big})
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "a message over 1 MiB is refused before decoding: %v", err)

	md := metadata.MD{}
	for i := range 40 {
		md.Set("x-padding-"+strings.Repeat("p", i), strings.Repeat("v", 2<<10))
	}
	ctx := metadata.NewOutgoingContext(context.Background(), md)
	_, err = h.client.GetCurrentUser(ctx, &authv1.GetCurrentUserRequest{})
	require.Error(t, err, "80 KiB of metadata is refused")
	require.NotEqual(t, codes.OK, status.Code(err))

	_, err = h.client.GetCurrentUser(context.Background(), &authv1.GetCurrentUserRequest{})
	require.NoError(t, err, "the server is still there for well-behaved calls")
	<-h.svc.sawID
}

// TestASilentConnectionIsClosed: a connection that never sends the HTTP/2 preface is
// dropped after the handshake timeout instead of held for two minutes.
func TestASilentConnectionIsClosed(t *testing.T) {
	t.Parallel()
	s := grpctest.Start(t, func(r grpc.ServiceRegistrar) { authv1.RegisterAuthServiceServer(r, &auth{}) },
		grpctest.WithServerConfig(func(c *grpcserver.Config) { c.Limits.HandshakeTimeout = 100 * time.Millisecond }))
	var d net.Dialer
	conn, err := d.DialContext(t.Context(), "tcp", s.Addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	// A bound only so that a broken server fails the test rather than hanging it.
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(30*time.Second)))
	_, err = io.ReadAll(conn)
	var netErr net.Error
	require.False(t, errors.As(err, &netErr) && netErr.Timeout(), "the server closed the connection: %v", err)
}
