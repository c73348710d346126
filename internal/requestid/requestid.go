// Package requestid accepts or mints the id that ties together every log line and span of
// one client request, across the edge and every service it reaches, and carries it
// through the context: the edge and each gRPC server set it once per request, loggers
// (internal/logging) and clients (internal/grpcclient) read it.
package requestid

import (
	"context"
	"crypto/rand"
	"encoding/hex"
)

// Header is the HTTP header and (lower-cased) gRPC metadata key that carries the id.
const Header = "X-Request-Id"

// MetadataKey is Header as gRPC metadata spells it.
const MetadataKey = "x-request-id"

// maxLen bounds ids accepted from clients, so a hostile header cannot bloat every log line.
const maxLen = 128

// New mints a random 128-bit id, hex-encoded.
func New() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms.
	return hex.EncodeToString(b[:])
}

// Valid reports whether a client-supplied id may be kept: 1 to 128 characters of
// letters, digits and "-_.:", nothing that could forge a log line.
func Valid(id string) bool {
	if id == "" || len(id) > maxLen {
		return false
	}
	for _, c := range []byte(id) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

// Accept returns id when it is valid and a fresh id otherwise.
func Accept(id string) string {
	if Valid(id) {
		return id
	}
	return New()
}

// contextKey is unexported so that only this package can set or read the id, and no
// other package's context value can collide with it.
type contextKey struct{}

// NewContext returns a copy of ctx carrying the request id.
func NewContext(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, contextKey{}, id)
}

// FromContext returns the request id carried by ctx, or "" when there is none.
func FromContext(ctx context.Context) string {
	id, _ := ctx.Value(contextKey{}).(string)
	return id
}
