package subscription

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/backplane/backplane/internal/plans"
)

// defaultPriceTTL is how long prices read from Stripe are served before they are read
// again: a new price made by `backplane stripe sync` shows within five minutes.
const defaultPriceTTL = 5 * time.Minute

// price is what Stripe says a plan's price is.
type price struct {
	id       string
	amount   int64
	currency string
	interval plans.Interval
}

// priceBook holds the Stripe prices of the catalogue's paid plans, by lookup key, read
// from Stripe at most once per ttl. Without Stripe it holds nothing, and the file's
// amounts are shown.
type priceBook struct {
	stripe  *stripeAPI // nil: billing is off
	catalog *plans.Catalog
	ttl     time.Duration
	now     func() time.Time
	log     *slog.Logger

	mu      sync.Mutex // held while reading Stripe, so that concurrent misses read once
	prices  map[string]price
	fetched time.Time
}

// get returns the prices by lookup key. When Stripe cannot be read it returns the
// prices it last read, however old, or none; the error says why.
func (b *priceBook) get(ctx context.Context) (map[string]price, error) {
	if b.stripe == nil {
		return nil, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.prices != nil && b.now().Sub(b.fetched) < b.ttl {
		return b.prices, nil
	}
	fresh, err := b.read(ctx)
	if err != nil {
		return b.prices, err
	}
	b.prices, b.fetched = fresh, b.now()
	return fresh, nil
}

// read lists the active prices of the catalogue's lookup keys, ten at a time, the most
// Stripe filters by at once.
func (b *priceBook) read(ctx context.Context) (map[string]price, error) {
	var keys []string
	for _, p := range b.catalog.Plans() {
		if p.Price != nil {
			keys = append(keys, p.Price.LookupKey)
		}
	}
	out := map[string]price{}
	for len(keys) > 0 {
		batch := keys[:min(10, len(keys))]
		keys = keys[len(batch):]
		err := b.stripe.call(ctx, "list prices", func(ctx context.Context) error {
			lp := &stripe.PriceListParams{Active: stripe.Bool(true), LookupKeys: stripe.StringSlice(batch)}
			lp.Context = ctx
			it := b.stripe.api.Prices.List(lp)
			for it.Next() {
				pr := it.Price()
				p := price{id: pr.ID, amount: pr.UnitAmount, currency: string(pr.Currency)}
				if pr.Recurring != nil {
					p.interval = plans.Interval(pr.Recurring.Interval)
				}
				out[pr.LookupKey] = p
			}
			return it.Err()
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// priceOf returns the Stripe price id a plan sells, reading Stripe if need be; "" when
// Stripe has no active price with the plan's lookup key (run `backplane stripe sync`).
func (b *priceBook) priceOf(ctx context.Context, p plans.Plan) (string, error) {
	if p.Price == nil {
		return "", nil
	}
	prices, err := b.get(ctx)
	if pr, ok := prices[p.Price.LookupKey]; ok {
		return pr.id, nil
	}
	return "", err
}

// planOfPrice returns the catalogue plan that a Stripe price sells: by its lookup key,
// else by its id among the prices read.
func (b *priceBook) planOfPrice(ctx context.Context, id, lookupKey string) (plans.Plan, bool) {
	if p, ok := b.catalog.PlanByLookupKey(lookupKey); ok {
		return p, true
	}
	prices, _ := b.get(ctx)
	for key, pr := range prices {
		if pr.id == id {
			return b.catalog.PlanByLookupKey(key)
		}
	}
	return plans.Plan{}, false
}
