package authn

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeRecords stands in for the auth service's PostgreSQL in this package's tests; the
// auth service tests exercise the real one.
type fakeRecords struct {
	live    map[string]time.Time
	lookups int
	err     error
}

func (f *fakeRecords) SessionLiveUntil(_ context.Context, id string) (bool, time.Time, error) {
	f.lookups++
	exp, ok := f.live[id]
	return ok, exp, f.err
}

func TestEndedSessionRejectsItsTokens(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	token, sid := b.login(t)
	_, err := b.verifier.Verify(ctx, token)
	require.NoError(t, err)

	require.NoError(t, b.sessions.End(ctx, sid, time.Now().Add(16*time.Minute)))
	_, err = b.verifier.Verify(ctx, token)
	require.ErrorIs(t, err, ErrInvalidToken)

	// A refresh racing the logout cannot bring the session back.
	require.NoError(t, b.sessions.MarkLive(ctx, sid, time.Now().Add(time.Hour)))
	_, err = b.verifier.Verify(ctx, token)
	require.ErrorIs(t, err, ErrInvalidToken)
}

func TestLiveSessionsFallBackToRecordsWhenRedisForgets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	live, ended := rand.Text(), rand.Text()
	records := &fakeRecords{live: map[string]time.Time{live: time.Now().Add(time.Hour)}}
	sessions := newTestSessions(t, WithSessionRecords(records))

	// Nothing in Redis, as after a flush: the records decide, both ways.
	ok, err := sessions.Live(ctx, live)
	require.NoError(t, err)
	require.True(t, ok, "losing Redis must not log a live session out")
	ok, err = sessions.Live(ctx, ended)
	require.NoError(t, err)
	require.False(t, ok, "losing Redis must not let an ended session back in")
	require.Equal(t, 2, records.lookups)

	// The answers were written back: no further lookups.
	for range 3 {
		ok, err = sessions.Live(ctx, live)
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = sessions.Live(ctx, ended)
		require.NoError(t, err)
		require.False(t, ok)
	}
	require.Equal(t, 2, records.lookups)

	// A failing record store fails the check rather than guessing.
	records.err = errors.New("database down")
	_, err = sessions.Live(ctx, rand.Text())
	require.Error(t, err)
}

func TestMirrorRebuildAfterRedisLoss(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sessions := newTestSessions(t)
	rdb, prefix := sessions.rdb, sessions.prefix
	live, ended := rand.Text(), rand.Text()

	// Redis knows nothing, not even that it is ready: absence proves nothing yet.
	_, err := sessions.Live(ctx, live)
	require.ErrorIs(t, err, ErrMirrorRebuilding)

	// An End racing the rebuild wins over it.
	require.NoError(t, sessions.End(ctx, ended, time.Now().Add(time.Hour)))
	pages := func(_ context.Context, after string) ([]LiveSession, error) {
		if after != "" {
			return nil, nil
		}
		exp := time.Now().Add(time.Hour)
		return []LiveSession{{ID: live, Expire: exp}, {ID: ended, Expire: exp}}, nil
	}
	ready, err := sessions.Rebuild(ctx, pages)
	require.NoError(t, err)
	require.True(t, ready)

	ok, err := sessions.Live(ctx, live)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = sessions.Live(ctx, ended)
	require.NoError(t, err)
	require.False(t, ok)
	ok, err = sessions.Live(ctx, rand.Text())
	require.NoError(t, err, "once ready, an unknown session is simply not live")
	require.False(t, ok)

	// Redis loses its contents during a rebuild: the rebuild reports it must run again.
	flushing := func(ctx context.Context, after string) ([]LiveSession, error) {
		require.NoError(t, rdb.Del(ctx, prefix+readyKey).Err())
		return nil, nil
	}
	ready, err = sessions.Rebuild(ctx, flushing)
	require.NoError(t, err)
	require.False(t, ready)
	ok, err = sessions.Ready(ctx)
	require.NoError(t, err)
	require.False(t, ok)
}
