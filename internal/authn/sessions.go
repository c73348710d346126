package authn

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// SessionRecords is the durable record of sessions: the auth service's PostgreSQL. The
// live-session mirror asks it when Redis does not know a session, so that losing Redis's
// contents neither logs everyone out nor lets an ended session back in.
type SessionRecords interface {
	// SessionLiveUntil reports whether a session is live and, if so, when it expires. An
	// unknown session is not live and not an error.
	SessionLiveUntil(ctx context.Context, sessionID string) (live bool, expire time.Time, err error)
}

// Session states as stored in Redis.
const (
	stateLive  = "1"
	stateEnded = "0"
)

// The mirror's readiness marker, stored beside the sessions (session ids are UUIDs, so
// the name cannot collide). The auth service sets it once every live session has been
// written; its absence means Redis lost its contents and the mirror is being rebuilt.
const (
	readyKey     = "_ready"
	readyPending = "pending"
	readyDone    = "ready"
)

// ErrMirrorRebuilding means Redis does not know a session and the mirror is being
// rebuilt after Redis lost its contents, so the absence proves nothing. Callers answer
// UNAVAILABLE: the client retries, nobody is logged out.
var ErrMirrorRebuilding = errors.New("authn: the live-session mirror is being rebuilt")

// finishRebuild marks the mirror ready only if the pending marker written when the
// rebuild began is still there: a flush during the rebuild removes it, and the rebuild
// must run again.
var finishRebuild = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
`)

// markLive writes "live" unless a tombstone is there: a refresh racing a logout must not
// bring the session back.
var markLive = redis.NewScript(`
if redis.call('GET', KEYS[1]) == '0' then return 0 end
redis.call('SET', KEYS[1], '1', 'PXAT', ARGV[1])
return 1
`)

// restoreKey writes a session's state found in the records unless the key has come back
// meanwhile (a tombstone from End, or another lookup's answer), and returns the state the
// key holds afterwards: a logout racing the lookup wins, whichever command runs first.
var restoreKey = redis.NewScript(`
local state = redis.call('GET', KEYS[1])
if state then return state end
redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
return ARGV[1]
`)

// missTombstone is how long a session the records call ended is remembered as such
// after a miss: it spares them a lookup per request from a client that keeps presenting
// a dead session's tokens.
const missTombstone = time.Minute

// LiveSessions mirrors which sessions are live in Redis, shared by every replica and by
// the edge. The auth service writes it; verifiers read it on every request.
type LiveSessions struct {
	rdb     redis.UniversalClient
	records SessionRecords
	prefix  string
	now     func() time.Time
}

// LiveSessionsOption configures LiveSessions.
type LiveSessionsOption func(*LiveSessions)

// WithSessionRecords makes a lookup that misses Redis ask records and write the answer
// back: the auth service asks its PostgreSQL, every other process asks the auth service
// (GRPCSessionRecords), since a key can be lost (eviction, failover) while the mirror
// stays marked ready. Without it a miss counts as "not live" while the mirror is marked
// ready, and as ErrMirrorRebuilding while it is not.
func WithSessionRecords(records SessionRecords) LiveSessionsOption {
	return func(l *LiveSessions) { l.records = records }
}

// WithKeyPrefix sets the prefix of the Redis keys ("backplane:session:" by default);
// tests use it to keep their keys apart.
func WithKeyPrefix(prefix string) LiveSessionsOption {
	return func(l *LiveSessions) { l.prefix = prefix }
}

// WithSessionClock sets the clock (time.Now by default).
func WithSessionClock(now func() time.Time) LiveSessionsOption {
	return func(l *LiveSessions) { l.now = now }
}

// NewLiveSessions returns the live-session mirror kept in rdb.
func NewLiveSessions(rdb redis.UniversalClient, opts ...LiveSessionsOption) *LiveSessions {
	l := &LiveSessions{rdb: rdb, prefix: "backplane:session:", now: time.Now}
	for _, o := range opts {
		o(l)
	}
	return l
}

func (l *LiveSessions) key(sessionID string) string { return l.prefix + sessionID }

// MarkLive records that a session is live until expire, unless it has been ended.
func (l *LiveSessions) MarkLive(ctx context.Context, sessionID string, expire time.Time) error {
	if !expire.After(l.now()) {
		return nil
	}
	return markLive.Run(ctx, l.rdb, []string{l.key(sessionID)}, expire.UnixMilli()).Err()
}

// End records that a session has ended. The tombstone stays until keepUntil, which must
// be at least the expiry of the last access token issued for it; after that a missing
// key sends lookups to the records, which know the session has ended. The end is also
// announced to every SessionFeed, so that streams the session holds open end at once.
func (l *LiveSessions) End(ctx context.Context, sessionID string, keepUntil time.Time) error {
	ttl := keepUntil.Sub(l.now())
	if ttl < time.Second {
		ttl = time.Second
	}
	pipe := l.rdb.Pipeline()
	pipe.Set(ctx, l.key(sessionID), stateEnded, ttl)
	l.publishEnded(ctx, pipe, sessionID)
	_, err := pipe.Exec(ctx)
	return err
}

// Live reports whether a session is live.
func (l *LiveSessions) Live(ctx context.Context, sessionID string) (bool, error) {
	state, err := l.rdb.Get(ctx, l.key(sessionID)).Result()
	switch {
	case err == nil:
		return state == stateLive, nil
	case !errors.Is(err, redis.Nil):
		return false, err
	case l.records == nil:
		ready, err := l.rdb.Get(ctx, l.key(readyKey)).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return false, err
		}
		if ready != readyDone {
			return false, ErrMirrorRebuilding
		}
		return false, nil
	}
	live, _, err := l.Restore(ctx, sessionID)
	return live, err
}

// Restore answers for a session whose key the mirror lacks from the records, and writes
// the answer back: the session's key with its expiry when it is live, a short tombstone
// when it is not. A tombstone written meanwhile by End wins over the records' "live". It
// needs WithSessionRecords; the auth service's CheckSession answers with it.
func (l *LiveSessions) Restore(ctx context.Context, sessionID string) (live bool, expire time.Time, err error) {
	if l.records == nil {
		return false, time.Time{}, errors.New("authn: restoring a session needs its records")
	}
	live, expire, err = l.records.SessionLiveUntil(ctx, sessionID)
	if err != nil {
		return false, time.Time{}, err
	}
	now := l.now()
	state, until := stateEnded, now.Add(missTombstone)
	if live {
		if !expire.After(now) {
			// Expiring as we speak: nothing worth writing, and the records' word stands.
			return true, expire, nil
		}
		state, until = stateLive, expire
	}
	got, err := restoreKey.Run(ctx, l.rdb, []string{l.key(sessionID)}, state, until.UnixMilli()).Text()
	switch {
	case !live:
		// The records' "ended" is final, whatever the mirror holds or whether the
		// tombstone could be written.
		return false, time.Time{}, nil
	case err != nil:
		return false, time.Time{}, err
	case got != stateLive:
		return false, time.Time{}, nil
	}
	return true, expire, nil
}

// LiveSession is a session and its expiry, for rebuilding the mirror.
type LiveSession struct {
	ID     string
	Expire time.Time
}

// Ready reports whether the mirror holds every live session.
func (l *LiveSessions) Ready(ctx context.Context) (bool, error) {
	v, err := l.rdb.Get(ctx, l.key(readyKey)).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	return v == readyDone, err
}

// Rebuild writes every live session that pages yields into the mirror and then marks it
// ready. pages returns the sessions after the given id (empty for the first page) and an
// empty page at the end. Tombstones written meanwhile win over the rebuild. If Redis
// loses its contents again during the rebuild, the mirror stays unready and Rebuild
// reports false, to be run again.
func (l *LiveSessions) Rebuild(ctx context.Context, pages func(ctx context.Context, after string) ([]LiveSession, error)) (bool, error) {
	if err := l.rdb.Set(ctx, l.key(readyKey), readyPending, 0).Err(); err != nil {
		return false, err
	}
	after := ""
	for {
		page, err := pages(ctx, after)
		if err != nil {
			return false, err
		}
		if len(page) == 0 {
			break
		}
		pipe := l.rdb.Pipeline()
		for _, s := range page {
			if s.Expire.After(l.now()) {
				markLive.Eval(ctx, pipe, []string{l.key(s.ID)}, s.Expire.UnixMilli())
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return false, err
		}
		after = page[len(page)-1].ID
	}
	done, err := finishRebuild.Run(ctx, l.rdb, []string{l.key(readyKey)}, readyPending, readyDone).Int()
	return done == 1, err
}
