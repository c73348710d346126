package ratelimit

import (
	"hash/maphash"
	"sync"
	"time"
)

// DefaultLeaseTTL is how long a [Limiter] keeps leased units unless told
// otherwise.
const DefaultLeaseTTL = time.Second

// leaseUnits is how many units beyond a call's cost a [Limiter] first asks
// Redis for under l: a twentieth of the burst, at least 1 and at most 20.
// Small enough that a replica holding a key it sees now and then holds little
// of its budget; a key whose calls come fast gets larger leases (see
// lease.resize), up to leaseCeiling.
func leaseUnits(l Limit) int { return min(leaseCeiling(l), 20) }

// leaseCeiling is the most units beyond a call's cost a [Limiter] asks Redis
// for under l: a twentieth of the burst, at least 1, so that a replica never
// holds more than that share of a caller's budget.
func leaseCeiling(l Limit) int { return max(l.Burst/20, 1) }

// A key's lease is sized to its traffic on this replica: a refill that comes
// within leaseQuick of the grant before it found that lease too small, and
// the next is twice as large, up to leaseCeiling; one that comes after more
// than leaseSlow found it larger than needed, and the next is half as large,
// down to leaseUnits. So a key busy on this replica costs a round trip per
// 50-400 ms of its calls rather than per 20 calls (at 9,000 calls a second
// those refills, and the calls waiting for them, were the edge's largest cost
// after GC), and a replica holds no more of a caller's budget than some
// hundreds of milliseconds of that caller's calls there, whatever the burst.
const (
	leaseQuick = 50 * time.Millisecond
	leaseSlow  = 400 * time.Millisecond
)

// leases are units of budget a [Limiter] has already spent in Redis, ahead of
// the calls that will use them, so that those calls are decided in process.
//
// Each key holds at most leaseUnits of its limit, counting units asked for by
// a call still waiting for Redis. One call at a time refills a key's lease;
// calls that find it empty meanwhile wait for that refill, which takes no
// longer than their own round trip would, and ask Redis themselves only if it
// left too little. Without the wait, every call of a busy key arriving during
// a refill would make its own round trip.
//
// Units left when a lease expires are forgotten: Redis refills them as time
// passes, so a lost lease under-admits, never over-admits. Memory is bounded
// like [Local]'s: a full shard forgets spent and expired leases, then
// arbitrary ones.
type leases struct {
	ttl      int64 // microseconds
	maxShard int
	seed     maphash.Seed
	shards   [localShards]leaseShard
}

type leaseShard struct {
	mu sync.Mutex
	m  map[string]*lease
}

// lease is one key's leased units and what Redis said when granting them;
// times are microseconds of the Limiter's clock.
type lease struct {
	limit     Limit   // the limit the units were granted under
	units     int     // granted and not yet spent
	pending   int     // asked of Redis by calls still waiting for its answer
	refill    *refill // the refill in flight; nil if none
	expires   int64   // when units left are forgotten
	remaining int     // Redis's Remaining at the last grant, leased units excluded
	resetAt   int64   // when the budget is full again, as of the last grant
	// size is how many units the next refill asks for (see resize), and
	// refilledAt when the last refill was granted; zero before the first.
	size       int
	refilledAt int64
}

// want is how many units e should hold once refilled under lim.
func (e *lease) want(lim Limit) int {
	return min(max(e.size, leaseUnits(lim)), leaseCeiling(lim))
}

// resize sizes the refill after the one granted at now: larger if this one
// came quickly after the last, smaller if it came long after.
func (e *lease) resize(lim Limit, now int64) {
	size := e.want(lim)
	if e.refilledAt != 0 {
		switch since := now - e.refilledAt; {
		case since < leaseQuick.Microseconds():
			size = min(2*size, leaseCeiling(lim))
		case since > leaseSlow.Microseconds():
			size = max(size/2, leaseUnits(lim))
		}
	}
	e.size, e.refilledAt = size, now
}

// refill is one call's round trip to Redis for a lease, which calls finding
// the lease empty meanwhile wait for.
type refill struct {
	// done is closed once Redis has answered, or failed to.
	done chan struct{}
	// failed reports, once done is closed, that Redis did not answer.
	failed bool
}

// reservation is what reserve tells a call that found its key's lease short.
type reservation struct {
	// extra is how many units to ask Redis for beyond the call's cost.
	extra int
	// wait, if not nil, is a refill in flight: the call should wait for it
	// and try the lease again rather than ask Redis.
	wait *refill
	// refill is the refill this call makes, completed by settle; nil if
	// none.
	refill *refill
}

func newLeases(maxKeys int, ttl time.Duration) *leases {
	if maxKeys < 1 {
		maxKeys = DefaultLocalMaxKeys
	}
	ls := &leases{
		ttl:      ttl.Microseconds(),
		maxShard: max(maxKeys/localShards, 1),
		seed:     maphash.MakeSeed(),
	}
	for i := range ls.shards {
		ls.shards[i].m = make(map[string]*lease)
	}
	return ls
}

func (ls *leases) shard(key string) *leaseShard {
	return &ls.shards[maphash.String(ls.seed, key)%localShards]
}

// live reports whether e holds units usable under lim at now.
func (e *lease) live(lim Limit, now int64) bool {
	return e.limit == lim && e.expires > now && e.units > 0
}

// spendLocked spends cost of e's units, if e holds that many under lim.
func (e *lease) spendLocked(lim Limit, cost int, now int64) (Decision, bool) {
	if !e.live(lim, now) || e.units < cost {
		return Decision{}, false
	}
	e.units -= cost
	return Decision{
		Allowed:    true,
		Limit:      lim.Burst,
		Remaining:  e.remaining + e.units,
		ResetAfter: micros(max(e.resetAt-now, 0)),
	}, true
}

// spend decides a call from key's lease, if it holds cost units under lim.
func (ls *leases) spend(key string, lim Limit, cost int, now int64) (Decision, bool) {
	s := ls.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[key]
	if e == nil {
		return Decision{}, false
	}
	return e.spendLocked(lim, cost, now)
}

// reserve tells a call that key's lease could not pay for what to do: wait
// for a refill in flight (only if mayWait), or ask Redis for its cost plus
// the reservation's extra units, which are noted as pending until settle.
func (ls *leases) reserve(key string, lim Limit, now int64, mayWait bool) reservation {
	s := ls.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[key]
	if e == nil {
		if len(s.m) >= ls.maxShard {
			s.evict(now, ls.maxShard)
		}
		e = &lease{limit: lim}
		s.m[key] = e
	}
	if !e.live(lim, now) {
		// Units granted under another limit, or expired, are forgotten; so is
		// the size found for another limit.
		if e.limit != lim {
			e.size, e.refilledAt = 0, 0
		}
		e.limit, e.units = lim, 0
	}
	if mayWait && e.refill != nil {
		return reservation{wait: e.refill}
	}
	r := reservation{extra: max(e.want(lim)-e.units-e.pending, 0)}
	if r.extra > 0 {
		e.pending += r.extra
		if e.refill == nil {
			r.refill = &refill{done: make(chan struct{})}
			e.refill = r.refill
		}
	}
	return r
}

// settle records Redis's answer d to a call holding reservation r that was
// granted granted extra units (ok is false when Redis did not answer), and
// wakes the calls waiting for it. It returns the decision to give the caller:
// d with the units now leased counted in Remaining, or, if d refused the call
// but a concurrent grant left enough units, a decision from the lease,
// reported by fromLease.
func (ls *leases) settle(key string, lim Limit, cost int, r reservation, granted int, d Decision, ok bool, now int64) (_ Decision, fromLease bool) {
	s := ls.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.refill != nil {
		r.refill.failed = !ok
		// Deferred so that waiters wake to the units granted.
		defer close(r.refill.done)
	}
	e := s.m[key]
	if e == nil {
		// Evicted while Redis answered.
		if !ok || granted == 0 {
			return d, false
		}
		if len(s.m) >= ls.maxShard {
			s.evict(now, ls.maxShard)
		}
		e = &lease{limit: lim}
		s.m[key] = e
	} else {
		e.pending = max(e.pending-r.extra, 0)
		if r.refill != nil && e.refill == r.refill {
			e.refill = nil
		}
	}
	if !ok {
		return d, false
	}
	if !e.live(lim, now) {
		e.limit, e.units = lim, 0
	}
	if d.Allowed {
		e.units += granted
		e.remaining = d.Remaining
		e.resetAt = now + d.ResetAfter.Microseconds()
		if granted > 0 {
			e.expires = now + ls.ttl
			if r.refill != nil {
				e.resize(lim, now)
			}
		}
		d.Remaining += e.units
		return d, false
	}
	if ld, spent := e.spendLocked(lim, cost, now); spent {
		return ld, true
	}
	if e.live(lim, now) {
		d.Remaining += e.units
	}
	return d, false
}

// evict makes room in a full shard, as localShard.evict does: leases with
// nothing left and none pending go first, then arbitrary ones, whose units
// are forgotten.
func (s *leaseShard) evict(now int64, limit int) {
	for k, e := range s.m {
		if e.pending == 0 && (e.units == 0 || e.expires <= now) {
			delete(s.m, k)
		}
	}
	for k := range s.m {
		if len(s.m) < limit-limit/8 {
			break
		}
		delete(s.m, k)
	}
}
