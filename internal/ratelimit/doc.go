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
// Which [Limit] applies to a caller is a [Policy]'s business; [StaticPolicy]
// holds the two configured defaults (BACKPLANE_RATE_LIMIT_ANONYMOUS and
// BACKPLANE_RATE_LIMIT_AUTHENTICATED, parsed with [ParseLimit]) until limits
// come from subscription plans. [Decision.Headers] renders a decision as the
// RateLimit-* and Retry-After fields both the REST edge (headers) and gRPC
// (trailers) send.
package ratelimit
