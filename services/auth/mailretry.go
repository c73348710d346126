package auth

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Backoff between attempts to hand a security email over while notification (or its
// database) is unavailable.
const (
	mailRetryFirst = 200 * time.Millisecond
	mailRetryMax   = 2 * time.Second
)

// sendRetrying hands m to n, again and again while the answer is UNAVAILABLE, until ctx
// ends. An email is handed over after its request has answered, so a short outage of
// notification or of PostgreSQL (a restart, a failover) must not lose it: the faults
// suite lost verification emails of sign-ups that had succeeded. The idempotency key
// makes every attempt after a lost reply a no-op. Anything but UNAVAILABLE is final.
//
// It is not durable: an email still waiting when the auth process dies, or when the
// outage outlasts ctx, is lost (and logged). A River job committed with the change
// would close that gap.
func sendRetrying(ctx context.Context, n notifier, m securityEmail) error {
	wait := mailRetryFirst
	for {
		err := n.Send(ctx, m)
		if status.Code(err) != codes.Unavailable {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, mailRetryMax)
	}
}
