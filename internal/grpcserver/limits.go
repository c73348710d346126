package grpcserver

import (
	"net"
	"time"

	"golang.org/x/net/netutil"
	"google.golang.org/grpc"
)

// Defaults for [Limits], the same bounds the REST door keeps (http.Server's
// MaxHeaderBytes, the 1 MiB body cap), so that neither door is the cheaper one to abuse.
const (
	// DefaultMaxMessageBytes caps one received message. Streaming uploads, which send
	// their bytes in many messages, are not bounded by it as a whole.
	DefaultMaxMessageBytes = 1 << 20
	// DefaultMaxHeaderListBytes caps a call's metadata (HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE).
	DefaultMaxHeaderListBytes = 64 << 10
	// DefaultMaxConcurrentStreams caps the calls open at once on one connection.
	DefaultMaxConcurrentStreams = 100
	// DefaultMaxConnections caps the connections served at once; more wait to be accepted.
	DefaultMaxConnections = 10000
	// DefaultHandshakeTimeout closes a connection that has not finished the HTTP/2
	// preface (and the TLS handshake, with TLS) in time.
	DefaultHandshakeTimeout = 5 * time.Second
)

// Limits bound what one client can make a server hold. Zero fields take the defaults.
type Limits struct {
	MaxMessageBytes      int
	MaxHeaderListBytes   uint32
	MaxConcurrentStreams uint32
	MaxConnections       int
	HandshakeTimeout     time.Duration
}

func (l Limits) withDefaults() Limits {
	if l.MaxMessageBytes == 0 {
		l.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if l.MaxHeaderListBytes == 0 {
		l.MaxHeaderListBytes = DefaultMaxHeaderListBytes
	}
	if l.MaxConcurrentStreams == 0 {
		l.MaxConcurrentStreams = DefaultMaxConcurrentStreams
	}
	if l.MaxConnections == 0 {
		l.MaxConnections = DefaultMaxConnections
	}
	if l.HandshakeTimeout == 0 {
		l.HandshakeTimeout = DefaultHandshakeTimeout
	}
	return l
}

func (l Limits) serverOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(l.MaxMessageBytes),
		grpc.MaxHeaderListSize(l.MaxHeaderListBytes),
		grpc.MaxConcurrentStreams(l.MaxConcurrentStreams),
		grpc.ConnectionTimeout(l.HandshakeTimeout),
	}
}

// listener bounds the connections served from lis at once.
func (l Limits) listener(lis net.Listener) net.Listener {
	return netutil.LimitListener(lis, l.MaxConnections)
}
