package clientip_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/backplane/backplane/internal/clientip"
)

func TestResolve(t *testing.T) {
	t.Parallel()
	r, err := clientip.NewResolver([]string{"10.0.0.0/8", "192.0.2.7"})
	require.NoError(t, err)
	a := netip.MustParseAddr
	cases := []struct {
		name string
		peer string
		cf   string
		xff  []string
		want string
	}{
		{"untrusted peer ignores headers", "203.0.113.9", "198.51.100.1", []string{"198.51.100.2"}, "203.0.113.9"},
		{"trusted peer, cloudflare header", "10.1.2.3", "198.51.100.1", []string{"198.51.100.2"}, "198.51.100.1"},
		{"trusted peer, rightmost untrusted hop", "10.1.2.3", "", []string{"1.1.1.1, 198.51.100.2, 10.9.9.9"}, "198.51.100.2"},
		{"spoofed leftmost hop is not believed", "10.1.2.3", "", []string{"6.6.6.6", "198.51.100.2"}, "198.51.100.2"},
		{"single trusted address", "192.0.2.7", "", []string{"198.51.100.3"}, "198.51.100.3"},
		{"trusted peer without headers", "10.1.2.3", "", nil, "10.1.2.3"},
		{"garbage header", "10.1.2.3", "not-an-ip", []string{"nonsense"}, "10.1.2.3"},
		{"ipv4-mapped ipv6 peer", "::ffff:10.1.2.3", "", []string{"198.51.100.4"}, "198.51.100.4"},
	}
	for _, tc := range cases {
		require.Equal(t, a(tc.want), r.Resolve(a(tc.peer), tc.cf, tc.xff), tc.name)
	}
}

func TestNewResolverRejectsGarbage(t *testing.T) {
	t.Parallel()
	_, err := clientip.NewResolver([]string{"10.0.0.0/33"})
	require.Error(t, err)
	_, err = clientip.NewResolver([]string{"proxy.local"})
	require.Error(t, err)
}

func TestFromHTTPAndGRPC(t *testing.T) {
	t.Parallel()
	r, err := clientip.NewResolver([]string{"127.0.0.0/8"})
	require.NoError(t, err)
	req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/", nil)
	req.RemoteAddr = "127.0.0.1:5555"
	req.Header.Set("X-Forwarded-For", "198.51.100.5")
	require.Equal(t, netip.MustParseAddr("198.51.100.5"), r.FromHTTP(req))

	ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.ParseIP("203.0.113.1"), Port: 1}})
	ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("x-forwarded-for", "198.51.100.6"))
	require.Equal(t, netip.MustParseAddr("203.0.113.1"), r.FromGRPC(ctx), "an untrusted peer's header is ignored")
}
