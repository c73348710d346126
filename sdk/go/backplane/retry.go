package backplane

import (
	"context"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// RetryPolicy says when and how long the client waits to try a failed call again.
// Which failures are retried does not depend on it:
//
//   - RESOURCE_EXHAUSTED with a google.rpc.RetryInfo (a rate limit, or too many sign-in
//     attempts) is retried for every method, after the delay the server asks for: the
//     server refused the call before running it, so repeating it cannot do anything
//     twice. A delay longer than MaxRetryDelay, or past the context's deadline, is not
//     waited for; the error is returned at once, its RetryInfo saying when to return.
//     RESOURCE_EXHAUSTED without RetryInfo (a call that costs more than a whole rate
//     limit, an exhausted quota) is not retried.
//   - UNAVAILABLE is retried with exponential backoff and full jitter, but only for a
//     call that is safe to repeat, because it may have run before the failure: an RPC
//     mapped to GET, PUT or DELETE in its proto, one whose request carries a non-empty
//     idempotency_key (the server answers a repeat with the first result), or a call
//     made with the [Idempotent] call option. Anything else (sign-up, checkout, API key
//     creation, ...) returns UNAVAILABLE to the caller, who knows whether to try again.
//   - UNAUTHENTICATED on a call made with the session's access token is retried once,
//     at once, after a refresh; it does not count as an attempt.
//
// Streaming calls are not retried: the caller reopens the stream.
type RetryPolicy struct {
	// MaxAttempts bounds the attempts of one call, the first included; 1 turns retries
	// off. Zero means 4.
	MaxAttempts int
	// InitialBackoff is the longest wait before the first retry after UNAVAILABLE; each
	// further retry doubles it. Zero means 100ms.
	InitialBackoff time.Duration
	// MaxBackoff caps the backoff after UNAVAILABLE. Zero means 5s.
	MaxBackoff time.Duration
	// MaxRetryDelay is the longest delay asked by a RetryInfo that the client waits for.
	// Zero means 10s.
	MaxRetryDelay time.Duration
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 4
	}
	if p.InitialBackoff <= 0 {
		p.InitialBackoff = 100 * time.Millisecond
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = 5 * time.Second
	}
	if p.MaxRetryDelay <= 0 {
		p.MaxRetryDelay = 10 * time.Second
	}
	return p
}

// backoff is the wait before retry number n (1 for the first) after UNAVAILABLE: a
// random duration up to InitialBackoff·2^(n-1), capped at MaxBackoff ("full jitter"),
// so that clients failed by one outage do not come back in step.
func (p RetryPolicy) backoff(n int) time.Duration {
	ceiling := p.MaxBackoff
	if n-1 < 32 {
		if d := p.InitialBackoff << (n - 1); d > 0 && d < ceiling {
			ceiling = d
		}
	}
	return rand.N(ceiling) + 1 //nolint:gosec // G404: jitter spreads retries; it needs no unpredictability
}

// serverDelay is the wait the server asked for, plus up to a tenth more, so that the
// callers one limit refused do not all return in the same instant.
func serverDelay(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d + rand.N(d/10+1) //nolint:gosec // G404: jitter spreads retries; it needs no unpredictability
}

// retryWait decides whether attempt number `attempt` of a call that failed with e is
// tried again, and after how long.
func (p RetryPolicy) retryWait(ctx context.Context, e *Error, attempt int, safe bool) (time.Duration, bool) {
	if attempt >= p.MaxAttempts {
		return 0, false
	}
	var wait time.Duration
	switch {
	case e.Code == codes.ResourceExhausted && e.RetryInfo != nil:
		if e.RetryInfo.Delay > p.MaxRetryDelay {
			return 0, false
		}
		wait = serverDelay(e.RetryInfo.Delay)
	case e.Code == codes.Unavailable && safe:
		wait = p.backoff(attempt)
		if e.RetryInfo != nil {
			wait = max(wait, serverDelay(min(e.RetryInfo.Delay, p.MaxRetryDelay)))
		}
	default:
		return 0, false
	}
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
		// The call could not be tried again before its deadline: say why now rather
		// than after waiting.
		return 0, false
	}
	return wait, true
}

// sleep waits for d or until ctx ends, and reports whether the wait was complete.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// idempotentOption marks a call as safe to repeat.
type idempotentOption struct {
	grpc.EmptyCallOption
}

// Idempotent marks one call as safe to repeat after UNAVAILABLE, for a method the
// contract does not mark so but that the caller knows to be harmless to run twice
// (ending a session that may already have ended, say).
func Idempotent() grpc.CallOption {
	return idempotentOption{}
}

// markedIdempotent reports whether opts hold [Idempotent].
func markedIdempotent(opts []grpc.CallOption) bool {
	for _, o := range opts {
		if _, ok := o.(idempotentOption); ok {
			return true
		}
	}
	return false
}
