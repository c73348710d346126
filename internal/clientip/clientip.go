// Package clientip decides which address a request came from. Behind a load balancer or
// Cloudflare the socket's peer is the proxy, and the client is named in a header; but a
// header is only believed when the peer is a proxy we trust, or any client could choose
// its own address and dodge every per-IP limit. Exactly one header is believed, the one
// the deployment's proxy writes (X-Forwarded-For unless configured otherwise): were two
// read, a client could send the one its proxy passes through untouched.
package clientip

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// MetadataKey is the gRPC metadata key under which the edge tells services the client's
// address. The edge drops any value a client sends under it.
const MetadataKey = "x-backplane-client-ip"

// DefaultHeader is the header a [Resolver] believes unless told another.
const DefaultHeader = "X-Forwarded-For"

// Resolver resolves client addresses given the trusted proxies and the one header they
// write.
type Resolver struct {
	trusted []netip.Prefix
	// header is the believed header, canonical (HTTP) and lower-case (gRPC metadata).
	header, mdKey string
}

// Option configures a [Resolver].
type Option func(*Resolver) error

// WithHeader names the one header a trusted proxy's word is read from
// (BACKPLANE_CLIENT_IP_HEADER): X-Forwarded-For, walked from the right past trusted hops,
// or a header holding one address that the proxy sets and overwrites, such as
// CF-Connecting-IP behind Cloudflare or X-Real-IP behind nginx. Empty means
// [DefaultHeader].
func WithHeader(name string) Option {
	return func(r *Resolver) error {
		name = strings.TrimSpace(name)
		if name == "" {
			name = DefaultHeader
		}
		if !validHeaderName(name) {
			return fmt.Errorf("clientip: %q is not a header name", name)
		}
		r.header, r.mdKey = http.CanonicalHeaderKey(name), strings.ToLower(name)
		return nil
	}
}

// validHeaderName reports whether name is an HTTP token that is also a plain gRPC
// metadata key (no binary suffix, no pseudo-header).
func validHeaderName(name string) bool {
	if strings.HasSuffix(strings.ToLower(name), "-bin") {
		return false
	}
	return name != "" && strings.IndexFunc(name, func(c rune) bool {
		return c != '-' && c != '_' && c != '.' && (c < '0' || c > '9') && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z')
	}) < 0
}

// NewResolver parses trusted proxy CIDRs (a bare address counts as a /32 or /128).
func NewResolver(cidrs []string, opts ...Option) (*Resolver, error) {
	r := &Resolver{}
	for _, o := range append([]Option{WithHeader("")}, opts...) {
		if err := o(r); err != nil {
			return nil, err
		}
	}
	for _, c := range cidrs {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		if !strings.Contains(c, "/") {
			addr, err := netip.ParseAddr(c)
			if err != nil {
				return nil, fmt.Errorf("clientip: %q is not a CIDR or address", c)
			}
			r.trusted = append(r.trusted, netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("clientip: %q is not a CIDR or address", c)
		}
		r.trusted = append(r.trusted, p.Masked())
	}
	return r, nil
}

// Header is the one header the resolver believes, in canonical form.
func (r *Resolver) Header() string { return r.header }

func (r *Resolver) isTrusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Resolve returns the client's address given the socket peer and the values of the
// believed header. An untrusted peer is the client, whatever it says. Otherwise the header
// is read from the right, skipping our own proxies, and the first address not ours is the
// client: entries further left were written by whoever called the proxy and prove
// nothing. A header of one address (CF-Connecting-IP) is the one-hop case of the same
// walk; a garbled or missing value leaves the last address believed, at worst the peer.
func (r *Resolver) Resolve(peerAddr netip.Addr, values []string) netip.Addr {
	peerAddr = peerAddr.Unmap()
	if !peerAddr.IsValid() || !r.isTrusted(peerAddr) {
		return peerAddr
	}
	var hops []string
	for _, h := range values {
		hops = append(hops, strings.Split(h, ",")...)
	}
	client := peerAddr
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a garbled hop ends what we can believe
		}
		client = a.Unmap()
		if !r.isTrusted(client) {
			break
		}
	}
	return client
}

// FromHTTP resolves the client of an HTTP request.
func (r *Resolver) FromHTTP(req *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(req.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return r.Resolve(ap.Addr(), req.Header.Values(r.header))
}

// FromGRPC resolves the client of a gRPC call from its peer and metadata.
func (r *Resolver) FromGRPC(ctx context.Context) netip.Addr {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return netip.Addr{}
	}
	var addr netip.Addr
	if tcp, ok := p.Addr.(*net.TCPAddr); ok {
		addr, _ = netip.AddrFromSlice(tcp.IP)
	} else if ap, err := netip.ParseAddrPort(p.Addr.String()); err == nil {
		addr = ap.Addr()
	}
	// One key's values, not a copy of the whole metadata, which runs on every call.
	return r.Resolve(addr, metadata.ValueFromIncomingContext(ctx, r.mdKey))
}

type ipKey struct{}

// WithIP returns a context carrying the client's address.
func WithIP(ctx context.Context, ip netip.Addr) context.Context {
	return context.WithValue(ctx, ipKey{}, ip)
}

// FromContext returns the client's address stored by WithIP.
func FromContext(ctx context.Context) (netip.Addr, bool) {
	ip, ok := ctx.Value(ipKey{}).(netip.Addr)
	return ip, ok && ip.IsValid()
}

// ensure stores the gRPC client's address unless the REST door already stored it.
func (r *Resolver) ensure(ctx context.Context) context.Context {
	if _, ok := FromContext(ctx); ok {
		return ctx
	}
	return WithIP(ctx, r.FromGRPC(ctx))
}

// UnaryServerInterceptor stores the client's address in the context.
func (r *Resolver) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		return handler(r.ensure(ctx), req)
	}
}

// StreamServerInterceptor stores the client's address in the stream's context.
func (r *Resolver) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return handler(srv, &ctxStream{ServerStream: ss, ctx: r.ensure(ss.Context())})
	}
}

type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *ctxStream) Context() context.Context { return s.ctx }
