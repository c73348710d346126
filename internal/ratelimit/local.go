package ratelimit

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
)

// localShards spreads keys over independently locked maps, so that calls for
// different keys rarely wait for one another.
const localShards = 64

// DefaultLocalMaxKeys is how many keys a [Local] remembers unless told
// otherwise: enough for the distinct callers one replica sees during an
// outage of Redis, at roughly a hundred bytes each.
const DefaultLocalMaxKeys = 100_000

// Local decides with state kept in this process, by the same arithmetic as
// [Redis]. A replica enforces the limit on its own, so a fleet of n replicas
// allows up to n times the limit: it is the floor [Limiter] falls back to
// while Redis is unreachable, not a replacement for it.
//
// Memory is bounded: a shard that fills up forgets the keys whose budgets
// have refilled (which decide the same as never-seen keys), and if that is
// not enough, arbitrary keys, which errs towards letting calls through.
type Local struct {
	now      func() time.Time
	seed     maphash.Seed
	maxShard int
	shards   [localShards]localShard
}

type localShard struct {
	mu   sync.Mutex
	tats map[string]int64 // key → TAT, in microseconds since the epoch
}

// NewLocal returns an in-process limiter remembering up to maxKeys keys
// (DefaultLocalMaxKeys if maxKeys < 1), reading the time from now.
func NewLocal(maxKeys int, now func() time.Time) *Local {
	if maxKeys < 1 {
		maxKeys = DefaultLocalMaxKeys
	}
	l := &Local{
		now:      now,
		seed:     maphash.MakeSeed(),
		maxShard: max(maxKeys/localShards, 1),
	}
	for i := range l.shards {
		l.shards[i].tats = make(map[string]int64)
	}
	return l
}

// Allow spends cost units of key's budget under lim if that many are left,
// and reports the decision either way, as [Redis.Allow] does. It fails only
// on invalid arguments; ctx is there so that both limiters share a shape.
func (l *Local) Allow(_ context.Context, key string, lim Limit, cost int) (Decision, error) {
	g, err := newGCRA(lim, cost)
	if err != nil {
		return Decision{}, err
	}
	return l.allow(key, lim, g, cost), nil
}

// allow is Allow with its arguments checked and converted.
func (l *Local) allow(key string, lim Limit, g gcra, cost int) Decision {
	s := &l.shards[maphash.String(l.seed, key)%localShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	now := l.now().UnixMicro()
	tat, seen := s.tats[key]
	d, newTAT, _ := g.decide(lim, tat, now, cost, 0)
	if d.Allowed {
		if !seen && len(s.tats) >= l.maxShard {
			s.evict(now, l.maxShard)
		}
		s.tats[key] = newTAT
	}
	return d
}

// evict makes room in a full shard. Sweeping only when full keeps the common
// path free of bookkeeping; shrinking to seven eighths, rather than by one
// key, keeps a flood of new keys from sweeping on every call.
func (s *localShard) evict(now int64, limit int) {
	for k, tat := range s.tats {
		if tat <= now {
			delete(s.tats, k)
		}
	}
	for k := range s.tats {
		if len(s.tats) < limit-limit/8 {
			break
		}
		delete(s.tats, k)
	}
}
