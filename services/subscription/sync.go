package subscription

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"

	"github.com/stripe/stripe-go/v76"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/backplane/backplane/internal/plans"
)

// SyncCatalog makes Stripe sell the catalogue: for each paid plan, a product
// (backplane_<plan id>) named and described as the plan is, and an active price under
// the plan's lookup key with the plan's amount, currency and interval. It is what
// `backplane stripe sync` runs, and it is idempotent: run twice, the second run changes
// nothing. Stripe's prices are immutable, so a changed amount makes a new price, moves
// the lookup key to it and deactivates the old one; subscriptions on the old price keep
// it until they change plan. It writes one line per thing it looked at to out.
func SyncCatalog(ctx context.Context, cfg Config, log *slog.Logger, out io.Writer) error {
	if !cfg.BillingConfigured() {
		return errBillingOff
	}
	if cfg.Catalog == nil {
		cfg.Catalog = plans.Default()
	}
	api := newStripeAPI(cfg.StripeSecretKey, cfg.StripeAPIBase, defaultRetry, tracenoop.NewTracerProvider(), log)
	for _, plan := range cfg.Catalog.Plans() {
		if plan.Price == nil {
			_, _ = fmt.Fprintf(out, "plan %s: free, nothing to sell\n", plan.ID)
			continue
		}
		product, err := syncProduct(ctx, api, plan, out)
		if err != nil {
			return fmt.Errorf("plan %s: product: %w", plan.ID, err)
		}
		if err := syncPrice(ctx, api, plan, product, out); err != nil {
			return fmt.Errorf("plan %s: price %s: %w", plan.ID, plan.Price.LookupKey, err)
		}
	}
	return nil
}

// productID is the Stripe product that sells a plan.
func productID(plan plans.Plan) string { return "backplane_" + plan.ID }

// syncProduct creates the plan's product, or renames it to match the catalogue.
func syncProduct(ctx context.Context, api *stripeAPI, plan plans.Plan, out io.Writer) (string, error) {
	id := productID(plan)
	var prod *stripe.Product
	err := api.call(ctx, "get product", func(ctx context.Context) error {
		var err error
		prod, err = api.api.Products.Get(id, &stripe.ProductParams{Params: params(ctx, "")})
		return err
	})
	switch {
	case missing(err):
		err = api.call(ctx, "create product", func(ctx context.Context) error {
			p := &stripe.ProductParams{
				Params: params(ctx, idempotencyKey("product", id, plan.DisplayName, plan.Description)),
				ID:     stripe.String(id), Name: stripe.String(plan.DisplayName),
			}
			if plan.Description != "" {
				p.Description = stripe.String(plan.Description)
			}
			p.AddMetadata("plan_id", plan.ID)
			_, err := api.api.Products.New(p)
			return err
		})
		if err != nil {
			return "", err
		}
		_, _ = fmt.Fprintf(out, "product %s: created\n", id)
	case err != nil:
		return "", err
	case prod.Name != plan.DisplayName || (plan.Description != "" && prod.Description != plan.Description) || !prod.Active:
		err = api.call(ctx, "update product", func(ctx context.Context) error {
			p := &stripe.ProductParams{
				Params: params(ctx, idempotencyKey("product-update", id, plan.DisplayName, plan.Description)),
				Name:   stripe.String(plan.DisplayName), Active: stripe.Bool(true),
			}
			if plan.Description != "" {
				p.Description = stripe.String(plan.Description)
			}
			_, err := api.api.Products.Update(id, p)
			return err
		})
		if err != nil {
			return "", err
		}
		_, _ = fmt.Fprintf(out, "product %s: updated\n", id)
	default:
		_, _ = fmt.Fprintf(out, "product %s: unchanged\n", id)
	}
	return id, nil
}

// syncPrice makes the plan's lookup key name an active price of the plan's amount.
func syncPrice(ctx context.Context, api *stripeAPI, plan plans.Plan, product string, out io.Writer) error {
	want := plan.Price
	var current *stripe.Price
	err := api.call(ctx, "list prices", func(ctx context.Context) error {
		current = nil
		lp := &stripe.PriceListParams{LookupKeys: stripe.StringSlice([]string{want.LookupKey}), Active: stripe.Bool(true)}
		lp.Context = ctx
		it := api.api.Prices.List(lp)
		for it.Next() {
			if it.Price().LookupKey == want.LookupKey {
				current = it.Price()
			}
		}
		return it.Err()
	})
	if err != nil {
		return err
	}
	if current != nil && priceMatches(current, want) {
		_, _ = fmt.Fprintf(out, "price %s: unchanged %s (%s)\n", want.LookupKey, current.ID, describePrice(want))
		return nil
	}
	replacing := ""
	if current != nil {
		replacing = current.ID
	}
	var made *stripe.Price
	err = api.call(ctx, "create price", func(ctx context.Context) error {
		p := &stripe.PriceParams{
			// The price it replaces is part of the key: going back to an amount sold
			// before is a new price, not a replay of the first one's creation.
			Params: params(ctx, idempotencyKey("price", want.LookupKey, strconv.FormatInt(want.Amount, 10), want.Currency,
				string(want.Interval), want.Meter, product, replacing)),
			Product:           stripe.String(product),
			Currency:          stripe.String(want.Currency),
			UnitAmount:        stripe.Int64(want.Amount),
			LookupKey:         stripe.String(want.LookupKey),
			TransferLookupKey: stripe.Bool(true),
			Recurring:         &stripe.PriceRecurringParams{Interval: stripe.String(string(want.Interval))},
		}
		if want.Metered() {
			// The usage service reports each period's running total (action set), so the
			// last report of the period is what is billed.
			p.Recurring.UsageType = stripe.String(string(stripe.PriceRecurringUsageTypeMetered))
			p.Recurring.AggregateUsage = stripe.String(string(stripe.PriceRecurringAggregateUsageLastDuringPeriod))
		}
		p.AddMetadata("plan_id", plan.ID)
		var err error
		made, err = api.api.Prices.New(p)
		return err
	})
	if err != nil {
		return err
	}
	if replacing == "" {
		_, _ = fmt.Fprintf(out, "price %s: created %s (%s)\n", want.LookupKey, made.ID, describePrice(want))
		return nil
	}
	err = api.call(ctx, "deactivate price", func(ctx context.Context) error {
		_, err := api.api.Prices.Update(replacing, &stripe.PriceParams{Params: params(ctx, idempotencyKey("price-deactivate", replacing)), Active: stripe.Bool(false)})
		return err
	})
	if err != nil {
		return err
	}
	_, _ = fmt.Fprintf(out, "price %s: created %s (%s); the lookup key moved from %s, now inactive\n", want.LookupKey, made.ID, describePrice(want), replacing)
	return nil
}

// priceMatches reports whether a Stripe price sells what the catalogue says.
func priceMatches(p *stripe.Price, want *plans.Price) bool {
	if p.UnitAmount != want.Amount || string(p.Currency) != want.Currency || p.Recurring == nil ||
		string(p.Recurring.Interval) != string(want.Interval) || p.Recurring.IntervalCount > 1 {
		return false
	}
	return (p.Recurring.UsageType == stripe.PriceRecurringUsageTypeMetered) == want.Metered()
}

func describePrice(p *plans.Price) string {
	s := money(p.Amount, p.Currency) + " / " + string(p.Interval)
	if p.Metered() {
		s += " per unit of " + p.Meter
	}
	return s
}
