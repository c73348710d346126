package auth

import (
	"context"
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/backplane/backplane/internal/clientip"
	"github.com/backplane/backplane/internal/identity"
)

func TestClientOf(t *testing.T) {
	t.Parallel()
	base := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.ParseIP("10.0.0.9"), Port: 5555}})
	require.Equal(t, "10.0.0.9", clientOf(base).ip)

	// A raw x-forwarded-for is anyone's to write: not believed.
	spoofed := metadata.NewIncomingContext(base, metadata.Pairs("x-forwarded-for", "192.0.2.1"))
	require.Equal(t, "10.0.0.9", clientOf(spoofed).ip)

	// What the edge established is, when the edge relayed the call with its service
	// credential; from a client calling the service directly it is not.
	fwd := metadata.NewIncomingContext(base, metadata.Pairs(clientip.MetadataKey, "203.0.113.7", "x-forwarded-user-agent", "curl/8", "user-agent", "grpc-go"))
	require.Equal(t, "10.0.0.9", clientOf(fwd).ip, "an unrelayed claim of the client's address is ignored")
	fwd = identity.WithService(fwd, "gateway")
	got := clientOf(fwd)
	require.Equal(t, "203.0.113.7", got.ip)
	require.Equal(t, "curl/8", got.userAgent)

	// The trusted-proxy resolver's answer wins over headers.
	resolved := clientip.WithIP(fwd, netip.MustParseAddr("198.51.100.4"))
	require.Equal(t, "198.51.100.4", clientOf(resolved).ip)
}
