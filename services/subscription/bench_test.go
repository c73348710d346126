package subscription

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stripe/stripe-go/v76"
)

// BenchmarkWebhookEvents: customer.subscription.updated events applied per second, each
// a new event about one of 20 subscriptions (signature checked, ledger, a re-fetch from
// a Stripe stand-in on loopback, a conditional upsert, the announcement on Redis),
// against the baseline of the re-fetch alone, the one thing an event cannot do without.
func BenchmarkWebhookEvents(b *testing.B) {
	bundle := setup(b, withStripe())
	bundle.withPrices()
	var subs []*stripe.Subscription
	for range 20 {
		subs = append(subs, bundle.subscribe(b, uuid.New(), "pro_monthly"))
	}
	ctx := context.Background()
	const n = 400
	measure := func(op func(i int)) float64 {
		start := time.Now()
		for i := range n {
			op(i)
		}
		return n / time.Since(start).Seconds()
	}
	var base, events []float64
	for range b.N {
		for range 3 {
			base = append(base, measure(func(i int) {
				if _, err := bundle.srv.stripe.api.Subscriptions.Get(subs[i%len(subs)].ID, &stripe.SubscriptionParams{Params: params(ctx, "")}); err != nil {
					b.Fatal(err)
				}
			}))
			events = append(events, measure(func(i int) {
				body, sig := signed(eventID(), stripe.EventTypeCustomerSubscriptionUpdated, subs[i%len(subs)])
				if err := deliver(bundle.srv, body, sig); err != nil {
					b.Fatal(err)
				}
			}))
		}
	}
	bm, em := medianOf(base), medianOf(events)
	b.ReportMetric(bm, "baseline-refetch/s")
	b.ReportMetric(em, "events/s")
	b.ReportMetric(em/bm, "ratio")
}

func medianOf(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
