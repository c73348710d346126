// Package identity carries the authenticated caller of a request through the context,
// from the interceptor that verified the credential (internal/authn) to the handlers
// that act on it: the user, and the service that made or relayed the call. Handlers
// read the caller only through this package, so each rule (a USER call without a user
// is refused, an INTERNAL one without a service is refused) is written once.
package identity

import (
	"context"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/backplane/backplane/internal/fault"
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
	// Expiry is when the access token expires, after which a stream it opened ends;
	// zero for API keys, which stay valid until revoked.
	Expiry time.Time
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

// unauthenticated answers a USER call that reached its handler without a user: the
// enforcement interceptor did not run or let it through, and the call fails closed. A
// fresh error each time, since a fault.Error's details can be appended to.
func unauthenticated() error { return fault.New(fault.Unauthenticated, "authentication is required") }

// UserID returns the id of the calling user, whatever the credential (access token or
// API key), or an UNAUTHENTICATED fault when the call carries none.
func UserID(ctx context.Context) (uuid.UUID, error) {
	p, ok := FromContext(ctx)
	if !ok {
		return uuid.Nil, unauthenticated()
	}
	id, err := uuid.Parse(p.UserID)
	if err != nil {
		return uuid.Nil, fault.Wrap(fault.Unauthenticated, err, "authentication is required")
	}
	return id, nil
}

// Session returns the calling user and the session of their access token. A call with
// an API key, which has no session, is PERMISSION_DENIED; one without a user,
// UNAUTHENTICATED.
func Session(ctx context.Context) (userID, sessionID uuid.UUID, err error) {
	p, ok := FromContext(ctx)
	if !ok {
		return uuid.Nil, uuid.Nil, unauthenticated()
	}
	userID, uerr := uuid.Parse(p.UserID)
	sessionID, serr := uuid.Parse(p.SessionID)
	if uerr != nil || serr != nil {
		return uuid.Nil, uuid.Nil, fault.New(fault.PermissionDenied, "this method needs a signed-in session, not an API key")
	}
	return userID, sessionID, nil
}

type serviceKey struct{}

// WithService returns a context recording that the caller is the named service of the
// mesh: it called an INTERNAL RPC, or relayed a user's call, with a valid service
// credential.
func WithService(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, serviceKey{}, name)
}

// ServiceFromContext returns the service that made or relayed the call, if it proved
// it is one of ours.
func ServiceFromContext(ctx context.Context) (string, bool) {
	name, ok := ctx.Value(serviceKey{}).(string)
	return name, ok && name != ""
}

// CallingService returns the service that made the call, or a PERMISSION_DENIED fault
// when the caller did not prove it is one of ours. Handlers of INTERNAL RPCs check it
// again after the interceptor, so a wiring mistake fails closed.
func CallingService(ctx context.Context) (string, error) {
	if name, ok := ServiceFromContext(ctx); ok {
		return name, nil
	}
	return "", fault.New(fault.PermissionDenied, "this method is for Backplane services only")
}
