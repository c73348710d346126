package usage

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/scenario"
	"github.com/backplane/backplane/internal/stripetest"
)

// withStripe reports metered usage to fake.
func withStripe(fake *stripetest.Fake) option {
	return func(c *Config, _ *wiring) {
		c.StripeSecretKey = "sk_test_usage"
		c.StripeAPIBase = fake.URL
	}
}

// usageRequests are the usage-record requests fake received for item, in order.
func usageRequests(fake *stripetest.Fake, item string) []stripetest.Request {
	var out []stripetest.Request
	for _, r := range fake.Requests() {
		if r.Method == http.MethodPost && r.Path == "/v1/subscription_items/"+item+"/usage_records" {
			out = append(out, r)
		}
	}
	return out
}

// A metered plan's period total reaches Stripe as a usage record with action=set,
// under a key of the item, period and window; a failure is retried as the very same
// request; a report never says less than one before; and replicas send each report once.
func TestMeteredTotalsAreReportedToStripe(t *testing.T) {
	t.Parallel()
	fake := stripetest.NewFake(t)
	c := &clock{}
	b := setup(t, withClock(c), withStripe(fake))
	second := b.newServer(t, wiring{})
	user := uuid.New()
	start := time.Now().UTC().Add(-24 * time.Hour).Truncate(time.Second)
	end := start.AddDate(0, 1, 0)
	c.Set(start.Add(24 * time.Hour))
	item := b.subscribe(t, user, "payg", start, end)
	r := b.srv.reporter
	args := func(at time.Time) reportArgs {
		return reportArgs{StripeItemID: item, PeriodStart: start, PeriodEnd: end, Window: r.window(at)}
	}
	reported := func(t *testing.T) int64 {
		t.Helper()
		rep, err := b.srv.store.report(t.Context(), item, start)
		require.NoError(t, err)
		return rep.ReportedQuantity
	}

	scenario.Step(t, "the period's total is reported with action=set", func(t *testing.T) {
		b.record(t, user, "api_calls", 30, "a")
		due, err := b.srv.scanReports(t.Context())
		require.NoError(t, err)
		require.Equal(t, 1, due)
		require.NoError(t, r.report(t.Context(), args(c.Now())))
		reqs := usageRequests(fake, item)
		require.Len(t, reqs, 1)
		require.Equal(t, "30", reqs[0].Form.Get("quantity"))
		require.Equal(t, "set", reqs[0].Form.Get("action"))
		require.Equal(t, reportIdempotencyKey(args(c.Now())), reqs[0].IdempotencyKey)
		require.Equal(t, int64(30), reported(t))
	})
	scenario.Step(t, "nothing new, nothing queued or sent", func(t *testing.T) {
		due, err := b.srv.scanReports(t.Context())
		require.NoError(t, err)
		require.Zero(t, due)
		require.NoError(t, r.report(t.Context(), args(c.Now())))
		require.Len(t, usageRequests(fake, item), 1)
	})
	scenario.Step(t, "a failure is retried as the same request", func(t *testing.T) {
		c.Set(c.Now().Add(b.cfg.ReportInterval))
		b.record(t, user, "api_calls", 20, "b")
		fake.FailNext(http.StatusInternalServerError)
		require.Error(t, r.report(t.Context(), args(c.Now())))
		b.record(t, user, "api_calls", 5, "c") // after the first attempt: the retry sends what it did
		require.NoError(t, r.report(t.Context(), args(c.Now())))
		reqs := usageRequests(fake, item)
		require.Len(t, reqs, 3)
		require.Equal(t, reqs[1].IdempotencyKey, reqs[2].IdempotencyKey)
		require.Equal(t, reqs[1].Form.Get("quantity"), reqs[2].Form.Get("quantity"))
		require.Equal(t, reqs[1].Form.Get("timestamp"), reqs[2].Form.Get("timestamp"))
		require.Equal(t, "50", reqs[2].Form.Get("quantity"))
		require.Equal(t, int64(50), reported(t))
	})
	scenario.Step(t, "the next window sends the new total", func(t *testing.T) {
		c.Set(c.Now().Add(b.cfg.ReportInterval))
		require.NoError(t, r.report(t.Context(), args(c.Now())))
		recs := fake.UsageRecords(item)
		require.Equal(t, int64(55), recs[len(recs)-1].Quantity)
		require.Greater(t, recs[len(recs)-1].Timestamp, recs[len(recs)-2].Timestamp, "later, so Stripe keeps it")
		require.Equal(t, int64(55), reported(t))
	})
	scenario.Step(t, "never less than was reported", func(t *testing.T) {
		_, err := b.pool.Exec(t.Context(), "UPDATE totals SET total = 10 WHERE stripe_item_id = $1", item)
		require.NoError(t, err)
		due, err := b.srv.scanReports(t.Context())
		require.NoError(t, err)
		require.Zero(t, due)
		c.Set(c.Now().Add(b.cfg.ReportInterval))
		sent := len(usageRequests(fake, item))
		require.NoError(t, r.report(t.Context(), args(c.Now())))
		require.Len(t, usageRequests(fake, item), sent, "nothing lower is sent")
		require.Equal(t, int64(55), reported(t))
		_, err = b.pool.Exec(t.Context(), "UPDATE totals SET total = 55 WHERE stripe_item_id = $1", item)
		require.NoError(t, err)
	})
	scenario.Step(t, "two replicas report a window once", func(t *testing.T) {
		c.Set(c.Now().Add(b.cfg.ReportInterval))
		b.record(t, user, "api_calls", 45, "d")
		for _, srv := range []*Server{b.srv, second} {
			due, err := srv.scanReports(t.Context())
			require.NoError(t, err)
			require.Equal(t, 1, due)
		}
		require.Equal(t, int64(1), b.count(t, "SELECT count(*) FROM usage_river.river_job WHERE kind = 'usage_stripe_report' AND (args->>'window')::bigint = $1",
			r.window(c.Now())), "one job per item and window")

		records := len(fake.UsageRecords(item))
		var wg sync.WaitGroup
		for _, srv := range []*Server{b.srv, second, b.srv, second} {
			wg.Go(func() { require.NoError(t, srv.reporter.report(t.Context(), args(c.Now()))) })
		}
		wg.Wait()
		recs := fake.UsageRecords(item)
		require.Len(t, recs, records+1, "one usage record; any other request was a replay of its key")
		require.Equal(t, int64(100), recs[len(recs)-1].Quantity)
		require.Equal(t, int64(100), reported(t))
	})
	scenario.Step(t, "a refusal Stripe would repeat cancels the job", func(t *testing.T) {
		c.Set(c.Now().Add(b.cfg.ReportInterval))
		b.record(t, user, "api_calls", 1, "e")
		fake.FailNext(http.StatusBadRequest)
		err := r.report(t.Context(), args(c.Now()))
		var cancel *river.JobCancelError
		require.ErrorAs(t, err, &cancel)
		require.Equal(t, int64(100), reported(t))
	})
}

// The leader's scan queues the reports, and River works them: the record reaches Stripe
// without anyone calling the reporter.
func TestTheReporterRunsOnRiver(t *testing.T) {
	t.Parallel()
	fake := stripetest.NewFake(t)
	b := setup(t, withStripe(fake))
	user := uuid.New()
	now := time.Now().UTC()
	item := b.subscribe(t, user, "payg", now.Add(-time.Hour), now.Add(24*time.Hour))
	b.record(t, user, "api_calls", 7, "a")
	startJobs(t, b.srv)
	require.Eventually(t, func() bool {
		recs := fake.UsageRecords(item)
		return len(recs) == 1 && recs[0].Quantity == 7
	}, 30*time.Second, 50*time.Millisecond, "the scan at start queues it")
}
