// Package ratelimit decides whether a call to the edge may proceed, with the
// generic cell rate algorithm (GCRA) kept in Redis so that every gateway
// replica shares one budget per caller.
//
// GCRA stores a single number per key, the theoretical arrival time (TAT): the
// moment at which the key's budget would be full again had every past call
// been spaced exactly one emission interval (Period/Rate) apart. A call of
// cost c is allowed when TAT + c×interval − Burst×interval is not in the
// future; allowing it moves the TAT forward by c×interval. One number means
// one GET and one SET, done atomically by a Lua script in a single round trip
// ([Redis]), with Redis's own clock so that replicas with skewed clocks agree.
//
// [Local] runs the same arithmetic in process. [Limiter] puts the two
// together: Redis decides, and when Redis cannot be reached the configured
// [FailureMode] chooses between the local floor (each replica enforces the
// limit on its own, so the fleet allows up to replicas × limit) and refusing
// with [ErrUnavailable]. Calls that must never run unmetered — login, sign-up,
// sending email — ask to fail closed whatever the mode.
//
// A round trip to Redis on every call is most of what rate limiting costs at
// the edge, so with [Config.Lease] a Limiter takes more than a call needs: it
// asks the script for the call's cost plus a lease (at first a twentieth of
// the limit's burst, between 1 and 20 units; for a key whose calls come fast
// on this replica, up to twice as many each refill, as far as a twentieth of
// the burst), and Redis spends the cost and as much of the lease as the
// budget has left, in the same round trip. The
// replica then spends the leased units on the key's next calls without asking
// Redis, until they run out or [Config.LeaseTTL] passes, so a burst of calls
// costs one round trip per lease instead of one per call. Redis stays the one
// source of truth: leased units are spent there when they are taken, so the
// fleet never admits more than the limit. The trade-off is fairness between
// replicas, not safety: a replica may hold up to a lease's worth of a key's
// budget (at most a twentieth of the burst, and no more than some hundreds of
// milliseconds of that key's calls on the replica) that another replica
// cannot use until it is spent or expires, and
// units that expire unspent are not given back but refill with time, so a
// caller spread over many replicas may be refused a few units early. Calls
// that must fail closed, and every call while Redis is failing, neither take
// nor spend leases. Leases are off unless configured.
//
// Which [Limit] applies to a caller is a [Policy]'s business; [StaticPolicy]
// holds the two configured defaults (BACKPLANE_RATE_LIMIT_ANONYMOUS and
// BACKPLANE_RATE_LIMIT_AUTHENTICATED, parsed with [ParseLimit]) until limits
// come from subscription plans. [Decision.Headers] renders a decision as the
// RateLimit-* and Retry-After fields both the REST edge (headers) and gRPC
// (trailers) send.
package ratelimit
