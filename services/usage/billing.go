package usage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/riverqueue/river"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/backplane/backplane/internal/service"
	"github.com/backplane/backplane/services/usage/dbsqlc"
)

// Usage-based billing. A plan whose Stripe price is metered (plans.Price.Meter) bills
// each period's total of one meter; the subscription service names the subscription
// item in each subscriber's entitlements, and the totals row of that user, meter and
// period carries it (totals.stripe_item_id). Every ReportInterval the leader's scan
// queues a report of each such total that grew since it was last reported, as a job
// unique to the item, period and report window; the job sends Stripe the period's total
// as a usage record with action=set, under an idempotency key of the item, period and
// window, and River retries it with backoff when Stripe fails.
//
// A report never sends less than was sent before. Under the report's row lock, a job
// picks the quantity (the total now, or more if more was reported) and timestamp and
// stores them as pending before calling Stripe, so that a retry of the job sends the
// very same request under the same key, and a later window supersedes it. Stripe
// keeps, per period, the record with the latest timestamp (the price's
// aggregate_usage=last_during_period): each window's timestamp is later than the last.
//
// A period is reported until finalGrace after it ends: Stripe finalises the invoice
// about an hour after the period, and usage reported after that is no longer billed.

// finalGrace is how long after a period ends its last total is still reported.
const finalGrace = time.Hour

// stripeTimeout bounds one call to Stripe.
const stripeTimeout = 20 * time.Second

// reporter sends metered totals to Stripe.
type reporter struct {
	api      *client.API
	store    *store
	interval time.Duration
	now      func() time.Time
	log      *slog.Logger
}

func newReporter(cfg Config, st *store, deps service.Deps, now func() time.Time, log *slog.Logger) *reporter {
	tp := deps.TracerProvider
	if tp == nil {
		tp = tracenoop.NewTracerProvider()
	}
	backends := stripe.NewBackendsWithConfig(&stripe.BackendConfig{
		URL:        stripe.String(cfg.StripeAPIBase),
		HTTPClient: &http.Client{Transport: otelhttp.NewTransport(http.DefaultTransport, otelhttp.WithTracerProvider(tp))},
		// River retries the job, with the same idempotency key; two retry loops would
		// multiply each other.
		MaxNetworkRetries: stripe.Int64(0),
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
	})
	return &reporter{api: client.New(cfg.StripeSecretKey, backends), store: st, interval: cfg.ReportInterval, now: now, log: log}
}

// window numbers the report interval holding t.
func (r *reporter) window(t time.Time) int64 { return t.Unix() / int64(r.interval/time.Second) }

// reportScanArgs is the periodic job that queues the reports due.
type reportScanArgs struct{}

// Kind implements river.JobArgs.
func (reportScanArgs) Kind() string { return "usage_stripe_report_scan" }

// reportScanWorker works reportScanArgs jobs.
type reportScanWorker struct {
	river.WorkerDefaults[reportScanArgs]
	s *Server
}

// Work implements river.Worker.
func (w *reportScanWorker) Work(ctx context.Context, _ *river.Job[reportScanArgs]) error {
	_, err := w.s.scanReports(ctx)
	return err
}

// scanReports queues a report of every metered total that grew since its last report,
// and returns how many it queued.
func (s *Server) scanReports(ctx context.Context) (int, error) {
	if s.reporter == nil {
		return 0, nil
	}
	now := s.now()
	due, err := s.store.billedTotals(ctx, now.Add(-finalGrace))
	if err != nil || len(due) == 0 {
		return 0, err
	}
	window := s.reporter.window(now)
	params := make([]river.InsertManyParams, len(due))
	for i, d := range due {
		params[i] = river.InsertManyParams{Args: reportArgs{StripeItemID: d.StripeItemID, PeriodStart: d.PeriodStart, PeriodEnd: d.PeriodEnd, Window: window}}
	}
	if _, err := s.jobs.River().InsertMany(ctx, params); err != nil {
		return 0, err
	}
	return len(due), nil
}

// reportArgs is the job that reports one item's period total, in one report window.
type reportArgs struct {
	StripeItemID string    `json:"stripe_item_id"`
	PeriodStart  time.Time `json:"period_start"`
	PeriodEnd    time.Time `json:"period_end"`
	Window       int64     `json:"window"`
}

// Kind implements river.JobArgs.
func (reportArgs) Kind() string { return "usage_stripe_report" }

// InsertOpts implements river.JobArgsWithInsertOpts: one job per item, period and
// window.
func (reportArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// reportWorker works reportArgs jobs.
type reportWorker struct {
	river.WorkerDefaults[reportArgs]
	s *Server
}

// Work implements river.Worker.
func (w *reportWorker) Work(ctx context.Context, job *river.Job[reportArgs]) error {
	if w.s.reporter == nil {
		return river.JobCancel(errors.New("billing is not configured"))
	}
	return w.s.reporter.report(ctx, job.Args)
}

// pendingReport is a usage record to send.
type pendingReport struct {
	quantity  int64
	timestamp time.Time
}

// report sends one item's period total to Stripe, unless nothing new is to be said.
func (r *reporter) report(ctx context.Context, a reportArgs) error {
	var send *pendingReport
	err := r.store.lockReport(ctx, a.StripeItemID, a.PeriodStart, func(tx *store, rep dbsqlc.StripeUsageReport) error {
		switch {
		case rep.PendingWindow != nil && *rep.PendingWindow > a.Window:
			// A later window's report is under way, with a total at least this one's.
			return nil
		case rep.PendingWindow != nil && *rep.PendingWindow == a.Window:
			// A retry: the same request as the first attempt.
			send = &pendingReport{quantity: *rep.PendingQuantity, timestamp: *rep.PendingTimestamp}
			return nil
		}
		total, err := tx.billedTotal(ctx, a.StripeItemID, a.PeriodStart)
		if err != nil {
			return err
		}
		quantity := max(total, rep.ReportedQuantity)
		if rep.PendingQuantity != nil {
			quantity = max(quantity, *rep.PendingQuantity)
		}
		if quantity <= rep.ReportedQuantity && rep.PendingWindow == nil {
			return nil
		}
		// Within the period (Stripe refuses others) and never in the future.
		ts := r.now().Truncate(time.Second)
		if last := a.PeriodEnd.Add(-time.Second); ts.After(last) {
			ts = last
		}
		if ts.Before(a.PeriodStart) {
			ts = a.PeriodStart
		}
		send = &pendingReport{quantity: quantity, timestamp: ts}
		return tx.setPendingReport(ctx, dbsqlc.StripeUsageReportSetPendingParams{
			StripeItemID: a.StripeItemID, PeriodStart: a.PeriodStart,
			PendingWindow: &a.Window, PendingQuantity: &quantity, PendingTimestamp: &ts,
		})
	})
	if err != nil || send == nil {
		return err
	}

	params := &stripe.UsageRecordParams{
		SubscriptionItem: stripe.String(a.StripeItemID),
		Quantity:         stripe.Int64(send.quantity),
		Timestamp:        stripe.Int64(send.timestamp.Unix()),
		Action:           stripe.String(stripe.UsageRecordActionSet),
	}
	sctx, cancel := context.WithTimeout(ctx, stripeTimeout)
	defer cancel()
	params.Context = sctx
	params.IdempotencyKey = stripe.String(reportIdempotencyKey(a))
	if _, err := r.api.UsageRecords.New(params); err != nil {
		if permanent(err) {
			// Stripe will say the same however often asked (the item is gone, the
			// period closed): a later window tries afresh with what is then true.
			r.log.ErrorContext(ctx, "stripe refused a usage report", "stripe_item_id", a.StripeItemID,
				"period_start", a.PeriodStart, "quantity", send.quantity, "error", err.Error())
			return river.JobCancel(err)
		}
		return fmt.Errorf("report usage to stripe: %w", err)
	}
	reported := r.now()
	return r.store.confirmReport(ctx, dbsqlc.StripeUsageReportConfirmParams{
		StripeItemID: a.StripeItemID, PeriodStart: a.PeriodStart, Quantity: send.quantity,
		ReportedTime: &reported, PendingWindow: a.Window,
	})
}

// reportIdempotencyKey names one report window of an item's period to Stripe.
func reportIdempotencyKey(a reportArgs) string {
	return fmt.Sprintf("backplane-usage-%s-%d-%d", a.StripeItemID, a.PeriodStart.Unix(), a.Window)
}

// permanent reports whether Stripe refused a request in a way a retry cannot change:
// any 4xx but 429 (a rate limit or lock timeout) and 409 (an idempotent request still
// in flight).
func permanent(err error) bool {
	se, ok := errors.AsType[*stripe.Error](err)
	if !ok {
		return false
	}
	c := se.HTTPStatusCode
	return c >= 400 && c < 500 && c != http.StatusTooManyRequests && c != http.StatusConflict
}
