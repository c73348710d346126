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
	require.Equal(t, "X-Forwarded-For", r.Header())
	a := netip.MustParseAddr
	cases := []struct {
		name string
		peer string
		xff  []string
		want string
	}{
		{"untrusted peer ignores the header", "203.0.113.9", []string{"198.51.100.2"}, "203.0.113.9"},
		{"trusted peer, rightmost untrusted hop", "10.1.2.3", []string{"1.1.1.1, 198.51.100.2, 10.9.9.9"}, "198.51.100.2"},
		{"spoofed leftmost hop is not believed", "10.1.2.3", []string{"6.6.6.6", "198.51.100.2"}, "198.51.100.2"},
		{"single trusted address", "192.0.2.7", []string{"198.51.100.3"}, "198.51.100.3"},
		{"trusted peer without headers", "10.1.2.3", nil, "10.1.2.3"},
		{"garbage header", "10.1.2.3", []string{"nonsense"}, "10.1.2.3"},
		{"garbage left of the client is never reached", "10.1.2.3", []string{"nonsense, 198.51.100.8, 10.0.0.1"}, "198.51.100.8"},
		{"ipv4-mapped ipv6 peer", "::ffff:10.1.2.3", []string{"198.51.100.4"}, "198.51.100.4"},
	}
	for _, tc := range cases {
		require.Equal(t, a(tc.want), r.Resolve(a(tc.peer), tc.xff), tc.name)
	}
}

// TestOneHeaderIsBelieved: behind a proxy that passes other headers through, a client
// cannot pick its address by sending the header the proxy does not write.
func TestOneHeaderIsBelieved(t *testing.T) {
	t.Parallel()
	request := func(header http.Header) *http.Request {
		req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/", nil)
		req.RemoteAddr = "10.0.0.1:5555"
		req.Header = header
		return req
	}
	spoofed := http.Header{"Cf-Connecting-Ip": {"6.6.6.6"}, "X-Forwarded-For": {"198.51.100.9"}}

	xff, err := clientip.NewResolver([]string{"10.0.0.0/8"})
	require.NoError(t, err)
	require.Equal(t, netip.MustParseAddr("198.51.100.9"), xff.FromHTTP(request(spoofed)), "CF-Connecting-IP does not beat X-Forwarded-For")

	cf, err := clientip.NewResolver([]string{"10.0.0.0/8"}, clientip.WithHeader("cf-connecting-ip"))
	require.NoError(t, err)
	require.Equal(t, "Cf-Connecting-Ip", cf.Header())
	require.Equal(t, netip.MustParseAddr("6.6.6.6"), cf.FromHTTP(request(spoofed)))
	require.Equal(t, netip.MustParseAddr("10.0.0.1"), cf.FromHTTP(request(http.Header{"X-Forwarded-For": {"198.51.100.9"}})),
		"without its header, the proxy is the client: X-Forwarded-For is not read")

	ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.ParseIP("10.0.0.1"), Port: 1}})
	ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("x-forwarded-for", "198.51.100.9", "cf-connecting-ip", "6.6.6.6"))
	require.Equal(t, netip.MustParseAddr("6.6.6.6"), cf.FromGRPC(ctx))
	require.Equal(t, netip.MustParseAddr("198.51.100.9"), xff.FromGRPC(ctx))

	for _, bad := range []string{"X Forwarded", "x-ip-bin", "a:b"} {
		_, err := clientip.NewResolver(nil, clientip.WithHeader(bad))
		require.Error(t, err, bad)
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
