package auth

import (
	"context"

	"github.com/backplane/backplane/internal/authn"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/internal/identity"
)

// The interceptor enforces each RPC's audience before a handler runs. The handlers of
// ADMIN and INTERNAL RPCs check again (INTERNAL ones with identity.CallingService), so a
// wiring mistake (a server built without the interceptor) fails closed instead of open.

// requireAdmin refuses callers without the admin role.
func requireAdmin(ctx context.Context) error {
	if p, ok := identity.FromContext(ctx); ok && p.HasRole(authn.RoleAdmin) {
		return nil
	}
	return fault.New(fault.PermissionDenied, "this method is for administrators")
}
