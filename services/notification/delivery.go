package notification

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/backplane/backplane/internal/database"
	"github.com/backplane/backplane/internal/jobs"
	"github.com/backplane/backplane/services/notification/dbsqlc"
)

// deliverer sends emails: it does the work of an emailArgs job, one attempt at a time.
// River hands each job to one worker at a time in any number of replicas, retries it with
// backoff when it fails, and runs it again when its process died; the deliverer makes
// sure that neither turns into a second send (see deliver).
type deliverer struct {
	store  *store
	mailer mailer
	links  links
	log    *slog.Logger
	// lookupEmail resolves a user recipient's address at delivery time, so an address
	// changed after Send is the one used.
	lookupEmail func(ctx context.Context, userID uuid.UUID) (string, error)
	// maxAttempts is BACKPLANE_NOTIFY_MAX_ATTEMPTS.
	maxAttempts int
	// lease bounds an attempt: River runs a job still running after it again.
	lease time.Duration
	// outcomes counts finished attempts by outcome, for dashboards and alerts on a
	// rising failure rate.
	outcomes metric.Int64Counter
	// tracer starts the spans of the delivery's steps (delivery_trace.go).
	tracer trace.Tracer
}

// attempt is one try at an email.
type attempt struct {
	// number counts every attempt at the email, this one included.
	number int
	// last is set when no retry will follow a failure.
	last bool
	// cancel is set when a failure must stop River from retrying, because our limit
	// is below the job's own.
	cancel bool
}

// record counts one attempt's outcome.
func (d *deliverer) record(ctx context.Context, outcome string) {
	d.outcomes.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", outcome)))
}

// deliver makes one attempt at the email of job's notification and records its
// outcome. Its error tells River what follows: nil when the email is settled (sent,
// failed for good or suppressed), river.JobCancel when retrying cannot help, and any
// other error for a retry after the backoff (jobs.RetryAfter when SendGrid said how long
// to wait).
//
// Exactly one send per email, as far as a sender can promise one:
//   - an attempt first records its number on the email's delivery row, and records its
//     outcome only while that number is still its own, so an attempt that outlived its
//     lease cannot overwrite the outcome of the attempt River started in its place;
//   - a job run again after its outcome was recorded (its process died before River
//     marked the job done) finds the email settled and sends nothing;
//   - the attempt is detached from River's cancellation and bounded by the lease
//     instead: a worker told to stop finishes the send it started and records it,
//     rather than leaving it to be sent again, and the send itself gets half the lease,
//     so it is over well before another attempt may start.
//
// A process killed after SendGrid accepted an email and before its outcome is recorded
// sends that email again: README.md's "exactly once, and its limit".
func (d *deliverer) deliver(ctx context.Context, job *river.Job[emailArgs]) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.lease)
	defer cancel()
	a := attempt{number: job.Args.PriorAttempts + job.Attempt}
	ours := a.number >= d.maxAttempts
	a.last = ours || job.Attempt >= job.MaxAttempts
	a.cancel = ours && job.Attempt < job.MaxAttempts

	claimCtx, span := d.step(ctx, spanClaim, a.number)
	row, err := d.store.beginEmailAttempt(claimCtx, job.Args.NotificationID, a.number)
	if errors.Is(err, database.ErrNotFound) {
		endStep(span, nil)
	} else {
		endStep(span, err)
	}
	if errors.Is(err, database.ErrNotFound) {
		// Settled already, or the notification is gone: nothing to send.
		d.log.DebugContext(ctx, "email job found nothing to send", "notification_id", job.Args.NotificationID, "attempt", a.number)
		return nil
	}
	if err != nil {
		return err
	}
	err = d.attempt(ctx, row, a)
	if errors.Is(err, errLeaseLost) {
		d.log.WarnContext(ctx, "email attempt outlived its lease; another attempt took over", "notification_id", row.NotificationID, "attempt", a.number)
		return nil
	}
	return err
}

// attempt sends a begun email and records the outcome. The address lookup and the send
// get half the lease; the rest is left for recording the outcome.
func (d *deliverer) attempt(ctx context.Context, row dbsqlc.DeliveryBeginEmailAttemptRow, a attempt) error {
	sendCtx, cancel := context.WithTimeout(ctx, d.lease/2)
	defer cancel()
	e := email{notificationID: row.NotificationID, subject: row.Title, text: row.BodyText, html: row.BodyHtml}
	claim := unsubscribeClaim{Category: row.Category, UserID: row.UserID}
	if row.Email != nil {
		e.to = *row.Email
		claim.Email = *row.Email
	} else {
		addr, err := d.lookupEmail(sendCtx, *row.UserID)
		if err != nil {
			return d.failed(ctx, row, a, "", err)
		}
		e.to = addr
	}

	if row.Category != categorySecurity {
		suppressed, err := d.store.suppressed(ctx, e.to, row.Category)
		if err != nil {
			return d.failed(ctx, row, a, e.to, retryableError(err))
		}
		if suppressed {
			d.record(ctx, statusSuppressed)
			return d.store.finishEmail(ctx, dbsqlc.DeliveryFinishEmailParams{
				NotificationID: row.NotificationID, Attempt: int64(row.Attempts), Status: statusSuppressed,
				StatusReason: "the address bounced, reported spam or unsubscribed", Address: e.to,
			})
		}
		e.unsubscribeURL = d.links.unsubscribe(claim)
	}

	stepCtx, span := d.step(sendCtx, spanSend, a.number)
	providerID, err := d.mailer.send(stepCtx, e)
	endStep(span, err)
	if err != nil {
		return d.failed(ctx, row, a, e.to, err)
	}
	d.record(ctx, statusSent)
	// The email is out: failing to record it now would send it again, so a passing
	// database error is retried while the lease lasts.
	ctx, span = d.step(ctx, spanMarkSent, a.number)
	defer func() { endStep(span, err) }()
	for wait := 50 * time.Millisecond; ; wait *= 2 {
		err = d.store.markSent(ctx, dbsqlc.DeliveryMarkEmailSentParams{
			NotificationID: row.NotificationID, Attempt: int64(row.Attempts), Address: e.to, ProviderID: providerID,
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

// failed records a failed attempt and tells River what follows: a retry after the
// backoff, or the end when the failure is permanent or the attempts are used up.
func (d *deliverer) failed(ctx context.Context, row dbsqlc.DeliveryBeginEmailAttemptRow, a attempt, addr string, err error) error {
	se := classify(err)
	if se.permanent || a.last {
		d.record(ctx, statusFailed)
		d.log.WarnContext(ctx, "email failed for good", "notification_id", row.NotificationID, "attempts", a.number, "error", se.msg)
		if err := d.store.finishEmail(ctx, dbsqlc.DeliveryFinishEmailParams{
			NotificationID: row.NotificationID, Attempt: int64(row.Attempts), Status: statusFailed,
			StatusReason: failureReason(se, a.number), LastError: se.msg, Address: addr,
		}); err != nil {
			return err
		}
		if se.permanent || a.cancel {
			return river.JobCancel(se)
		}
		return se // the job's last attempt: River discards it
	}
	d.record(ctx, "retried")
	d.log.InfoContext(ctx, "email will be retried", "notification_id", row.NotificationID, "attempts", a.number, "error", se.msg)
	if err := d.store.recordEmailFailure(ctx, dbsqlc.DeliveryRecordEmailFailureParams{
		NotificationID: row.NotificationID, Attempt: int64(row.Attempts), LastError: se.msg, Address: addr,
	}); err != nil {
		return err
	}
	if se.retryAfter > 0 {
		// Retrying before a rate limit resets only spends an attempt.
		return jobs.RetryAfter(se, se.retryAfter)
	}
	return se
}

// failureReason is the client-safe status_reason of an email failed for good.
func failureReason(se *sendError, attempts int) string {
	if se.permanent {
		return se.reason
	}
	return fmt.Sprintf("gave up after %d attempts; last: %s", attempts, se.reason)
}
