package ratelimit

import (
	"strconv"
	"time"
)

// Decision is a limiter's answer to one call, with what the caller is told
// about its budget.
type Decision struct {
	// Allowed reports whether the call may proceed; if so its cost has been
	// spent.
	Allowed bool
	// Limit is the budget's size: the Burst of the limit applied.
	Limit int
	// Remaining is how many units of cost could be spent right now. When a
	// call is refused it may be above zero, if less than the call's cost.
	Remaining int
	// ResetAfter is how long until the budget is full again if no more calls
	// are made.
	ResetAfter time.Duration
	// RetryAfter is how long until a call of the same cost would be allowed;
	// zero when Allowed.
	RetryAfter time.Duration
}

// Header field names, lower case as HTTP/2 and gRPC metadata want them; HTTP/1
// canonicalises them on the wire.
const (
	HeaderLimit      = "ratelimit-limit"
	HeaderRemaining  = "ratelimit-remaining"
	HeaderReset      = "ratelimit-reset"
	HeaderRetryAfter = "retry-after"
)

// Headers renders d as the RateLimit header fields of the IETF draft
// (draft-ietf-httpapi-ratelimit-headers), which the REST edge sends on every
// response and gRPC in trailers: the budget, what is left of it, and the
// seconds until it is full again; with Retry-After, in seconds, when the call
// was refused. Seconds are rounded up, so that a client waiting as told is
// never early.
func (d Decision) Headers() map[string]string {
	kv := d.AppendHeaders(make([]string, 0, 8))
	h := make(map[string]string, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		h[kv[i]] = kv[i+1]
	}
	return h
}

// AppendHeaders appends the header fields of Headers to kv as name, value pairs,
// for a caller that builds its own map (gRPC metadata) without an intermediate one.
func (d Decision) AppendHeaders(kv []string) []string {
	kv = append(kv,
		HeaderLimit, strconv.Itoa(d.Limit),
		HeaderRemaining, strconv.Itoa(max(d.Remaining, 0)),
		HeaderReset, strconv.FormatInt(ceilSeconds(d.ResetAfter), 10),
	)
	if !d.Allowed {
		// At least one second: "Retry-After: 0" invites an immediate retry
		// that would be refused again.
		kv = append(kv, HeaderRetryAfter, strconv.FormatInt(max(ceilSeconds(d.RetryAfter), 1), 10))
	}
	return kv
}

// ceilSeconds is d in whole seconds, rounded up; never negative.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}
