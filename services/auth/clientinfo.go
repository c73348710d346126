package auth

import (
	"context"
	"net"
	"net/netip"
	"strings"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/backplane/backplane/internal/clientip"
	"github.com/backplane/backplane/internal/identity"
)

// clientInfo is what the service records about the client of a sign-in.
type clientInfo struct {
	ip        string
	userAgent string
}

// clientOf reads the caller's address and User-Agent. The address is, in order: the one
// the trusted-proxy resolver (package clientip) stored in the context; the one the edge
// sends as x-backplane-client-ip, believed only when a service credential came with it
// (the edge drops that namespace from clients, and a client calling us directly cannot
// sign as a service); the peer. A raw x-forwarded-for is not believed: any client can
// write it.
func clientOf(ctx context.Context) clientInfo {
	var c clientInfo
	md, _ := metadata.FromIncomingContext(ctx)
	_, relayed := identity.ServiceFromContext(ctx)
	if ip, ok := clientip.FromContext(ctx); ok {
		c.ip = ip.String()
	} else if v := md.Get(clientip.MetadataKey); relayed && len(v) > 0 {
		if ip, err := netip.ParseAddr(strings.TrimSpace(v[0])); err == nil {
			c.ip = ip.String()
		}
	}
	if c.ip == "" {
		if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
			host, _, err := net.SplitHostPort(p.Addr.String())
			if err != nil {
				host = p.Addr.String()
			}
			c.ip = host
		}
	}
	for _, k := range []string{"x-forwarded-user-agent", "grpcgateway-user-agent", "user-agent"} {
		if v := md.Get(k); len(v) > 0 {
			c.userAgent = truncate(v[0], 512)
			break
		}
	}
	return c
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}
