package notification

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/backplane/backplane/services/notification/dbsqlc"
)

// deliveryPool runs the workers that drain the email outbox. Any number of pools, in any
// number of replicas, may share one database: a row is claimed by one worker at a time
// (FOR UPDATE SKIP LOCKED plus a lease), and every outcome is written only by the worker
// whose lease token still holds it.
type deliveryPool struct {
	store  *store
	mailer mailer
	cfg    Config
	links  links
	log    *slog.Logger
	// lookupEmail resolves a user recipient's address at delivery time, so an address
	// changed after Send is the one used.
	lookupEmail func(ctx context.Context, userID uuid.UUID) (string, error)
	// wake tells an idle worker that Send just accepted an email, so delivery in this
	// replica does not wait for the next poll.
	wake chan struct{}
	// jitter returns a number in [0, 1); rand.Float64 outside tests.
	jitter func() float64
	// outcomes counts finished attempts by outcome, for dashboards and alerts on a
	// rising failure rate.
	outcomes metric.Int64Counter
}

// record counts one attempt's outcome.
func (p *deliveryPool) record(ctx context.Context, outcome string) {
	p.outcomes.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", outcome)))
}

// notify wakes one idle worker, if any; it never blocks Send.
func (p *deliveryPool) notify() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// start runs the workers until stop is called. Stop lets sends in flight finish and
// record their outcome, so a deploy does not turn them into duplicates after the lease.
func (p *deliveryPool) start() (stop func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range p.cfg.Workers {
		wg.Go(func() { p.work(ctx) })
	}
	if p.cfg.Workers > 0 {
		wg.Go(func() { p.forgetOldEvents(ctx) })
	}
	return func(stopCtx context.Context) error {
		cancel()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
			return nil
		case <-stopCtx.Done():
			return stopCtx.Err()
		}
	}
}

// work claims and delivers emails until ctx ends, sleeping between polls when idle.
func (p *deliveryPool) work(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		n, err := p.deliverDue(ctx)
		if err != nil && ctx.Err() == nil {
			p.log.ErrorContext(ctx, "email delivery failed", "error", err)
		}
		if ctx.Err() != nil {
			return
		}
		if n > 0 && err == nil {
			continue // there may be more due at once
		}
		timer.Reset(p.cfg.PollInterval)
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		case <-timer.C:
		}
	}
}

// deliverDue claims one due email and delivers it, reporting how many it claimed. One at
// a time, so the lease only ever has to cover a single send.
func (p *deliveryPool) deliverDue(ctx context.Context) (int, error) {
	token := uuid.New()
	rows, err := p.store.claim(ctx, dbsqlc.OutboxClaimParams{
		LeaseMs: p.cfg.Lease.Milliseconds(), LeaseToken: &token, MaxRows: 1,
	})
	if err != nil {
		return 0, err
	}
	for _, row := range rows {
		// Detached from ctx: a worker told to stop finishes the send it started and
		// records it, rather than leaving it to be sent again after the lease. Bounded
		// by the lease, past which the outcome could not be recorded anyway.
		leaseCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.Lease)
		err = p.deliver(leaseCtx, row)
		cancel()
		if errors.Is(err, errLeaseLost) {
			p.log.WarnContext(ctx, "email lease ran out before its outcome was recorded", "notification_id", row.NotificationID)
			err = nil
		}
		if err != nil {
			return len(rows), err
		}
	}
	return len(rows), nil
}

// deliver sends one claimed email and records the outcome under the claim's lease. The
// address lookup and the send get half the lease (Config.sendTimeout); the rest is
// left for recording the outcome.
func (p *deliveryPool) deliver(ctx context.Context, row dbsqlc.OutboxClaimRow) error {
	sendCtx, cancel := context.WithTimeout(ctx, p.cfg.sendTimeout())
	defer cancel()
	e := email{notificationID: row.NotificationID, subject: row.Title, text: row.BodyText, html: row.BodyHtml}
	claim := unsubscribeClaim{Category: row.Category, UserID: row.UserID}
	if row.Email != nil {
		e.to = *row.Email
		claim.Email = *row.Email
	} else {
		addr, err := p.lookupEmail(sendCtx, *row.UserID)
		if err != nil {
			return p.failed(ctx, row, "", err)
		}
		e.to = addr
	}

	if row.Category != categorySecurity {
		suppressed, err := p.store.suppressed(ctx, e.to, row.Category)
		if err != nil {
			return p.failed(ctx, row, e.to, retryableError(err))
		}
		if suppressed {
			p.record(ctx, statusSuppressed)
			return p.store.finish(ctx, dbsqlc.OutboxFinishParams{
				ID: row.ID, LeaseToken: row.LeaseToken, Status: statusSuppressed,
				StatusReason: "the address bounced, reported spam or unsubscribed", Address: e.to,
			})
		}
		e.unsubscribeURL = p.links.unsubscribe(claim)
	}

	providerID, err := p.mailer.send(sendCtx, e)
	if err != nil {
		return p.failed(ctx, row, e.to, err)
	}
	p.record(ctx, statusSent)
	// The email is out: failing to record it now would send it again after the lease,
	// so a passing database error is retried while the lease lasts.
	for wait := 50 * time.Millisecond; ; wait *= 2 {
		err = p.store.markSent(ctx, dbsqlc.OutboxMarkSentParams{
			ID: row.ID, LeaseToken: row.LeaseToken, Address: e.to, ProviderID: providerID,
		})
		if err == nil || errors.Is(err, errLeaseLost) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// failed records a failed attempt: a retry after a backoff, or the end when the failure
// is permanent or the attempts are used up.
func (p *deliveryPool) failed(ctx context.Context, row dbsqlc.OutboxClaimRow, addr string, err error) error {
	se := classify(err)
	if se.permanent || int(row.Attempts) >= p.cfg.MaxAttempts {
		p.record(ctx, statusFailed)
		p.log.WarnContext(ctx, "email failed for good", "notification_id", row.NotificationID, "attempts", row.Attempts, "error", se.msg)
		return p.store.finish(ctx, dbsqlc.OutboxFinishParams{
			ID: row.ID, LeaseToken: row.LeaseToken, Status: statusFailed,
			StatusReason: failureReason(se, int(row.Attempts)), LastError: se.msg, Address: addr,
		})
	}
	delay := p.backoff(int(row.Attempts), se.retryAfter)
	p.record(ctx, "retried")
	p.log.InfoContext(ctx, "email will be retried", "notification_id", row.NotificationID, "attempts", row.Attempts, "delay", delay, "error", se.msg)
	return p.store.retry(ctx, dbsqlc.OutboxRetryParams{
		ID: row.ID, LeaseToken: row.LeaseToken, LastError: se.msg, DelayMs: delay.Milliseconds(),
	})
}

// failureReason is the client-safe status_reason of an email failed for good.
func failureReason(se *sendError, attempts int) string {
	if se.permanent {
		return se.reason
	}
	return fmt.Sprintf("gave up after %d attempts; last: %s", attempts, se.reason)
}

// backoff is the wait after the given attempt: retryBase doubled per attempt, capped at
// retryMax, spread by ±25% so that emails failed together do not retry together. A wait
// the provider asked for wins when it is longer: retrying before a rate limit resets
// only spends an attempt.
func (p *deliveryPool) backoff(attempt int, providerWait time.Duration) time.Duration {
	d := p.cfg.RetryBase
	for i := 1; i < attempt && d < p.cfg.RetryMax; i++ {
		d *= 2
	}
	d = min(d, p.cfg.RetryMax)
	d = time.Duration(float64(d) * (0.75 + 0.5*p.jitter()))
	return max(d, providerWait)
}

// defaultJitter is the jitter source outside tests.
func defaultJitter() float64 { return rand.Float64() } //nolint:gosec // G404: jitter spreads retries out; it need not be unpredictable

// Webhook event ids are kept long enough to recognise every retry SendGrid may make
// (it gives up after 72 hours), and then dropped so the table does not grow forever.
const (
	eventRetention = 7 * 24 * time.Hour
	eventSweep     = time.Hour
)

// forgetOldEvents drops old webhook event ids once an hour. Every replica does it; the
// deletes are idempotent, so running them twice costs only a query.
func (p *deliveryPool) forgetOldEvents(ctx context.Context) {
	ticker := time.NewTicker(eventSweep)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			if _, err := p.store.forgetSendgridEventsBefore(ctx, time.Now().Add(-eventRetention)); err != nil && ctx.Err() == nil {
				p.log.WarnContext(ctx, "could not drop old webhook event ids", "error", err)
			}
		}
	}
}
