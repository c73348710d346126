package authn

import (
	"context"
	"time"

	"golang.org/x/sync/singleflight"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
)

// GRPCSessionRecords answers the live-session mirror's misses through the auth service's
// CheckSession, which looks the session up in PostgreSQL and writes its key back: the
// records of every process but auth's own. Concurrent lookups of one session share one
// call, so a burst of calls on a session whose key was lost costs auth one query.
//
// Only sessions named by tokens whose signature verified (or by a vouch that checked)
// get here, so nobody can send auth a flood of made-up session ids.
type GRPCSessionRecords struct {
	client  authv1.AuthServiceClient
	flights singleflight.Group
}

// NewGRPCSessionRecords returns the records behind client, a connection to the auth
// service that carries this process's service credential (CheckSession is INTERNAL).
func NewGRPCSessionRecords(client authv1.AuthServiceClient) *GRPCSessionRecords {
	return &GRPCSessionRecords{client: client}
}

// sessionAnswer is one CheckSession's outcome, shared by the lookups that waited on it.
type sessionAnswer struct {
	live   bool
	expire time.Time
}

// SessionLiveUntil implements SessionRecords. A failure to reach auth is an error (the
// caller answers UNAVAILABLE): never taken for "ended", nor for "live".
func (g *GRPCSessionRecords) SessionLiveUntil(ctx context.Context, sessionID string) (bool, time.Time, error) {
	ch := g.flights.DoChan(sessionID, func() (any, error) {
		// The shared call must not end with the first caller's context, which would
		// fail every other waiter; it keeps the session check's own bound instead.
		callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), SessionCheckTimeout)
		defer cancel()
		resp, err := g.client.CheckSession(callCtx, &authv1.CheckSessionRequest{SessionId: sessionID})
		if status.Code(err) == codes.InvalidArgument {
			// Not a session id auth ever issued (the sid claim is always a UUID).
			return sessionAnswer{}, nil
		}
		if err != nil {
			return nil, err
		}
		a := sessionAnswer{live: resp.GetLive()}
		if a.live {
			a.expire = resp.GetExpireTime().AsTime()
		}
		return a, nil
	})
	select {
	case <-ctx.Done():
		return false, time.Time{}, ctx.Err()
	case r := <-ch:
		if r.Err != nil {
			return false, time.Time{}, r.Err
		}
		a, _ := r.Val.(sessionAnswer)
		return a.live, a.expire, nil
	}
}
