package notification

import (
	"context"

	"github.com/google/uuid"

	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/internal/identity"
)

// caller returns the authenticated user of a USER RPC. Without one, the authentication
// interceptor did not run or let the call through, and the call is refused.
func caller(ctx context.Context) (uuid.UUID, error) {
	p, ok := identity.FromContext(ctx)
	if !ok {
		return uuid.UUID{}, fault.New(fault.Unauthenticated, "authentication required")
	}
	id, err := uuid.Parse(p.UserID)
	if err != nil {
		return uuid.UUID{}, fault.Wrap(fault.Unauthenticated, err, "authentication required")
	}
	return id, nil
}
