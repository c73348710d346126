package jobs

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// Backoff is a retry schedule: the first retry comes First after a failure, each later
// one waits twice as long as the one before but never more than Max, and every wait is
// spread by ±Jitter of itself, so that jobs which failed together do not all retry
// together.
type Backoff struct {
	// First is the wait after the first failure.
	First time.Duration
	// Max caps the doubled wait.
	Max time.Duration
	// Jitter is the fraction, in [0, 1), by which a wait may be shorter or longer.
	Jitter float64
}

// DefaultBackoff is the schedule of a client whose Config leaves Retry unset: the first
// retry about a second after a failure, then 2 s, 4 s … up to an hour, ±25 %. With
// River's default of 25 attempts a job keeps trying for about 14 hours.
func DefaultBackoff() Backoff {
	return Backoff{First: time.Second, Max: time.Hour, Jitter: 0.25}
}

func (b Backoff) validate() error {
	switch {
	case b.First <= 0:
		return errors.New("Retry.First must be positive")
	case b.Max < b.First:
		return errors.New("Retry.Max must not be below Retry.First")
	case b.Jitter < 0 || b.Jitter >= 1:
		return errors.New("Retry.Jitter must be in [0, 1)")
	}
	return nil
}

// Delay is the wait after the given failure (1 for the first), jitter included.
func (b Backoff) Delay(failure int) time.Duration {
	return b.delay(failure, rand.Float64()) //nolint:gosec // G404: jitter spreads retries out; it need not be unpredictable
}

// delay is Delay with the random number r in [0, 1) given, so tests can pin it.
func (b Backoff) delay(failure int, r float64) time.Duration {
	d := b.First
	for i := 1; i < failure && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	return time.Duration(float64(d) * (1 - b.Jitter + 2*b.Jitter*r))
}

// RetryAfter marks a job's failure with the shortest wait before its next attempt, such
// as the Retry-After of a provider's rate limit: the retry comes after that wait or
// after the client's backoff, whichever is longer, because retrying before a limit
// resets only spends an attempt. The failure still counts as an attempt and its error is
// recorded with the job. To wait without spending an attempt, a worker returns
// river.JobSnooze instead; to give up for good, river.JobCancel.
func RetryAfter(err error, wait time.Duration) error {
	if err == nil {
		err = errors.New("retry requested")
	}
	return &retryAfterError{err: err, wait: wait}
}

type retryAfterError struct {
	err  error
	wait time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// retryPolicy schedules retries by a Backoff and honours RetryAfter.
//
// River asks its retry policy with the job row alone, never the error, so the error
// handler, which River calls with the error just before it asks the policy (same
// goroutine, same job), notes each job's earliest retry here for the policy to take.
type retryPolicy struct {
	backoff Backoff
	log     *slog.Logger
	now     func() time.Time

	mu       sync.Mutex
	earliest map[int64]time.Time // job id → earliest next attempt
}

// earliestLimit bounds earliest. An entry is left behind only when River discards a job
// without asking the policy (a worker overriding NextRetry, for one), and stale entries
// are harmless, being times already past; the bound just keeps them from piling up.
const earliestLimit = 1024

func newRetryPolicy(b Backoff, log *slog.Logger) *retryPolicy {
	return &retryPolicy{backoff: b, log: log, now: time.Now, earliest: map[int64]time.Time{}}
}

// NextRetry implements river.ClientRetryPolicy.
func (p *retryPolicy) NextRetry(job *rivertype.JobRow) time.Time {
	now := p.now()
	// job.Errors does not hold the failure being handled yet.
	at := now.Add(p.backoff.Delay(len(job.Errors) + 1))
	p.mu.Lock()
	earliest, ok := p.earliest[job.ID]
	delete(p.earliest, job.ID)
	p.mu.Unlock()
	if ok && earliest.After(at) {
		at = earliest
	}
	return at
}

// HandleError implements river.ErrorHandler: it notes the wait a RetryAfter error asks
// for, when the job will be retried at all.
func (p *retryPolicy) HandleError(_ context.Context, job *rivertype.JobRow, err error) *river.ErrorHandlerResult {
	var ra *retryAfterError
	if !errors.As(err, &ra) || job.Attempt >= job.MaxAttempts {
		return nil
	}
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.earliest) >= earliestLimit {
		for id, at := range p.earliest {
			if at.Before(now) {
				delete(p.earliest, id)
			}
		}
	}
	p.earliest[job.ID] = now.Add(ra.wait)
	return nil
}

// HandlePanic implements river.ErrorHandler. River logs the panic's value; the stack is
// what finds the bug, so it is logged here.
func (p *retryPolicy) HandlePanic(ctx context.Context, job *rivertype.JobRow, panicVal any, trace string) *river.ErrorHandlerResult {
	p.log.ErrorContext(ctx, "job panicked", "job_id", job.ID, "job_kind", job.Kind, "attempt", job.Attempt, "panic", panicVal, "stack", trace)
	return nil
}
