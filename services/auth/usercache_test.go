package auth

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/scenario"
	"github.com/backplane/backplane/services/auth/dbsqlc"
)

// stoppedClock is a clock that moves only when told, safe to read from the server's
// goroutines while a test moves it.
type stoppedClock struct{ at atomic.Int64 }

func newStoppedClock() *stoppedClock {
	c := &stoppedClock{}
	c.at.Store(time.Now().UnixNano())
	return c
}

func (c *stoppedClock) now() time.Time          { return time.Unix(0, c.at.Load()) }
func (c *stoppedClock) advance(d time.Duration) { c.at.Add(int64(d)) }

func currentUser(ctx context.Context, t *testing.T, srv *Server) *authv1.User {
	t.Helper()
	resp, err := srv.GetCurrentUser(ctx, &authv1.GetCurrentUserRequest{})
	require.NoError(t, err)
	return resp.GetUser()
}

// With the clock stopped no entry ever expires: what the next read shows, the write's
// forgetting put there.
func TestGetCurrentUserSeesEveryWriteThroughThisReplicaAtOnce(t *testing.T) {
	t.Parallel()
	clock := newStoppedClock()
	b := setup(t, withNow(clock.now))
	acct := b.signUp(t, uniqueEmail())
	ctx := b.as(t, acct.tokens.GetAccessToken())
	require.Equal(t, "Test User", currentUser(ctx, t, b.srv).GetDisplayName())

	scenario.Step(t, "a profile change", func(t *testing.T) {
		_, err := b.srv.UpdateCurrentUser(ctx, &authv1.UpdateCurrentUserRequest{User: &authv1.User{DisplayName: "Renamed"}})
		require.NoError(t, err)
		require.Equal(t, "Renamed", currentUser(ctx, t, b.srv).GetDisplayName())
	})
	scenario.Step(t, "a write in a transaction (the address verified)", func(t *testing.T) {
		require.False(t, currentUser(ctx, t, b.srv).GetEmailVerified())
		b.verify(t, acct)
		require.True(t, currentUser(ctx, t, b.srv).GetEmailVerified())
	})
	scenario.Step(t, "an admin's disabling", func(t *testing.T) {
		admin := b.signUp(t, uniqueEmail())
		_, err := b.srv.DisableUser(adminContext(admin.user.GetId()), &authv1.DisableUserRequest{UserId: acct.user.GetId()})
		require.NoError(t, err)
		require.True(t, currentUser(ctx, t, b.srv).GetDisabled())
	})
}

// Another replica's write reaches this one's cache by expiry alone, within userCacheTTL,
// which is at most the second every revocation is felt within.
func TestGetCurrentUserSeesAnotherReplicasWriteWithinTheTTL(t *testing.T) {
	t.Parallel()
	require.LessOrEqual(t, userCacheTTL, time.Second)
	clock := newStoppedClock()
	b := setup(t, withNow(clock.now))
	other, err := newServer(t.Context(), b.cfg, b.deps, wiring{notifier: b.mailer, hasher: cheapHasher(t), redisPrefix: b.prefix, now: clock.now})
	require.NoError(t, err)
	acct := b.signUp(t, uniqueEmail())
	ctx := b.as(t, acct.tokens.GetAccessToken())
	require.Equal(t, "Test User", currentUser(ctx, t, b.srv).GetDisplayName())

	_, err = other.UpdateCurrentUser(ctx, &authv1.UpdateCurrentUserRequest{User: &authv1.User{DisplayName: "Renamed elsewhere"}})
	require.NoError(t, err)
	require.Equal(t, "Renamed elsewhere", currentUser(ctx, t, other).GetDisplayName())

	clock.advance(userCacheTTL - time.Millisecond)
	require.Equal(t, "Test User", currentUser(ctx, t, b.srv).GetDisplayName(), "this replica answers from its cache until the entry expires")
	clock.advance(time.Millisecond)
	require.Equal(t, "Renamed elsewhere", currentUser(ctx, t, b.srv).GetDisplayName())
}

// A read that began before a write and ends after it must not put the row from before
// the write back in the cache.
func TestUserCacheRefusesAReadOlderThanAWrite(t *testing.T) {
	t.Parallel()
	clock := newStoppedClock()
	c := newUserCache(clock.now)
	id := uuid.New()

	_, ok, ticket := c.get(id)
	require.False(t, ok)
	c.forget(id) // the write commits while the read is under way
	c.put(dbsqlc.User{ID: id, DisplayName: "before the write"}, ticket)
	_, ok, _ = c.get(id)
	require.False(t, ok)

	_, _, ticket = c.get(id)
	c.put(dbsqlc.User{ID: id, DisplayName: "after the write"}, ticket)
	u, ok, _ := c.get(id)
	require.True(t, ok)
	require.Equal(t, "after the write", u.DisplayName)
}
