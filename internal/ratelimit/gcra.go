package ratelimit

import (
	"fmt"
	"time"
)

// gcra is a Limit in the whole microseconds both limiters compute with, so
// that Local and the Lua script reach the same decision from the same state.
type gcra struct {
	// interval is the emission interval: how long one unit of cost takes to
	// refill (Period/Rate, rounded to the nearest microsecond).
	interval int64
	// tolerance is interval × Burst: how far ahead of now the TAT may run.
	tolerance int64
}

// newGCRA checks that cost can ever be allowed under l and converts l.
func newGCRA(l Limit, cost int) (gcra, error) {
	if err := l.validate(); err != nil {
		return gcra{}, err
	}
	if cost < 1 {
		return gcra{}, fmt.Errorf("ratelimit: cost %d: must be at least 1", cost)
	}
	if cost > l.Burst {
		return gcra{}, fmt.Errorf("%w: cost %d, limit %s", ErrCostExceedsBurst, cost, l)
	}
	period := l.Period.Microseconds()
	rate := int64(l.Rate)
	interval := (period + rate/2) / rate
	return gcra{interval: interval, tolerance: interval * int64(l.Burst)}, nil
}

// decide is the algorithm the Lua script in gcra.lua also runs; keep them in
// step. tat is the stored TAT (0 for none) and now the clock, both in
// microseconds. It returns the decision and, when allowed, the TAT to store.
func (g gcra) decide(l Limit, tat, now int64, cost int) (Decision, int64) {
	tat = max(tat, now)
	newTAT := tat + g.interval*int64(cost)
	allowAt := newTAT - g.tolerance
	if allowAt > now {
		return Decision{
			Allowed:    false,
			Limit:      l.Burst,
			Remaining:  int((now - tat + g.tolerance) / g.interval),
			RetryAfter: micros(allowAt - now),
			ResetAfter: micros(tat - now),
		}, tat
	}
	return Decision{
		Allowed:    true,
		Limit:      l.Burst,
		Remaining:  int((now - allowAt) / g.interval),
		ResetAfter: micros(newTAT - now),
	}, newTAT
}

func micros(us int64) time.Duration { return time.Duration(us) * time.Microsecond }
