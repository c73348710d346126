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
// microseconds. When cost is allowed, up to extra more units are spent as
// well, as many as are left (the lease a [Limiter] keeps to spend in
// process); the decision's Remaining is what is left after both. It returns
// the decision, the TAT to store and the extra units granted.
func (g gcra) decide(l Limit, tat, now int64, cost, extra int) (Decision, int64, int) {
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
		}, tat, 0
	}
	granted := min(int64(max(extra, 0)), (now-allowAt)/g.interval)
	newTAT += g.interval * granted
	allowAt += g.interval * granted
	return Decision{
		Allowed:    true,
		Limit:      l.Burst,
		Remaining:  int((now - allowAt) / g.interval),
		ResetAfter: micros(newTAT - now),
	}, newTAT, int(granted)
}

func micros(us int64) time.Duration { return time.Duration(us) * time.Microsecond }
