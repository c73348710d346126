// Package identity carries the authenticated caller of a request through the context,
// from the interceptor that verified the credential to the handlers that act on it.
package identity

import (
	"context"
	"slices"
)

// Principal is who is calling and what they may do.
type Principal struct {
	// UserID is the acting user's id.
	UserID string
	// SessionID is the session of an access token; empty for API keys.
	SessionID string
	// APIKeyID is set when the caller authenticated with an API key.
	APIKeyID string
	// Roles are the user's roles, such as "admin".
	Roles []string
	// Scopes are the API key's scopes; empty for access tokens, which act with the
	// user's full authority.
	Scopes []string
}

// HasRole reports whether the principal holds role.
func (p Principal) HasRole(role string) bool { return slices.Contains(p.Roles, role) }

type principalKey struct{}

// WithPrincipal returns a context carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the caller, if the request was authenticated.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok && p.UserID != ""
}
