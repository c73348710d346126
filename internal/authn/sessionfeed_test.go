package authn

import (
	"context"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// startFeed starts a feed over sessions, closed when the test ends.
func startFeed(t *testing.T, sessions *LiveSessions, cfg SessionFeedConfig) *SessionFeed {
	t.Helper()
	f := NewSessionFeed(sessions, cfg)
	require.NoError(t, f.Start(t.Context()))
	t.Cleanup(func() { require.NoError(t, f.Close(context.Background())) })
	return f
}

func requireClosedWithin(t *testing.T, c <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(d):
		t.Fatalf("%s: not within %s", what, d)
	}
}

func requireOpenFor(t *testing.T, c <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-c:
		t.Fatalf("%s", what)
	case <-time.After(d):
	}
}

func TestSessionFeedAnnouncesEndsToWatchersAndHooks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sessions := newTestSessions(t)
	// A look-up interval far off, so that only the announcement can end the watch.
	f := startFeed(t, sessions, SessionFeedConfig{Interval: time.Hour})
	var mu sync.Mutex
	var heard []string
	f.OnEnded(func(id string) { mu.Lock(); heard = append(heard, id); mu.Unlock() })

	sid, other := rand.Text(), rand.Text()
	require.NoError(t, sessions.MarkLive(ctx, sid, time.Now().Add(time.Hour)))
	require.NoError(t, sessions.MarkLive(ctx, other, time.Now().Add(time.Hour)))
	first, stop1 := f.Watch(sid)
	defer stop1()
	second, stop2 := f.Watch(sid)
	defer stop2()
	bystander, stop3 := f.Watch(other)
	defer stop3()

	require.NoError(t, sessions.End(ctx, sid, time.Now().Add(time.Minute)))
	requireClosedWithin(t, first, time.Second, "the first watcher hears of the end")
	requireClosedWithin(t, second, time.Second, "the second watcher hears of the end")
	requireOpenFor(t, bystander, 100*time.Millisecond, "another session's watcher was told it ended")
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(heard) == 1 && heard[0] == sid
	}, time.Second, 10*time.Millisecond, "the hook hears of every ended session")
}

func TestSessionFeedLookUpCatchesAnEndWhoseAnnouncementWasLost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sessions := newTestSessions(t)
	f := startFeed(t, sessions, SessionFeedConfig{Interval: 100 * time.Millisecond})
	sid := rand.Text()
	require.NoError(t, sessions.MarkLive(ctx, sid, time.Now().Add(time.Hour)))
	ended, stop := f.Watch(sid)
	defer stop()
	requireOpenFor(t, ended, 300*time.Millisecond, "a live session was taken for ended")

	// The tombstone without its announcement, as when the subscriber was reconnecting.
	require.NoError(t, sessions.rdb.Set(ctx, sessions.key(sid), stateEnded, time.Minute).Err())
	requireClosedWithin(t, ended, time.Second, "the look-up finds the tombstone")
}

func TestSessionFeedAsksTheRecordsAboutAMissingKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	live, dead := rand.Text(), rand.Text()
	records := &lockedRecords{live: map[string]time.Time{live: time.Now().Add(time.Hour)}}
	sessions := newTestSessions(t, WithSessionRecords(records))
	f := startFeed(t, sessions, SessionFeedConfig{Interval: 50 * time.Millisecond})
	liveEnded, stop1 := f.Watch(live)
	defer stop1()
	deadEnded, stop2 := f.Watch(dead)
	defer stop2()

	// Neither key is in Redis, as after an eviction: the records decide.
	requireClosedWithin(t, deadEnded, time.Second, "a session the records call ended is ended")
	requireOpenFor(t, liveEnded, 300*time.Millisecond, "a live session whose key was evicted was taken for ended")
	state, err := sessions.rdb.Get(ctx, sessions.key(live)).Result()
	require.NoError(t, err)
	require.Equal(t, stateLive, state, "the look-up repaired the key")
}

// lockedRecords is fakeRecords safe for the feed's goroutine.
type lockedRecords struct {
	mu   sync.Mutex
	live map[string]time.Time
}

func (r *lockedRecords) SessionLiveUntil(_ context.Context, id string) (bool, time.Time, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	exp, ok := r.live[id]
	return ok, exp, nil
}
