package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/backplane/backplane/internal/config"
	"github.com/backplane/backplane/services/subscription"
)

// stripeUsage is the help of `backplane stripe`.
const stripeUsage = `Usage:
  backplane stripe sync   create or update the Stripe products and prices of the plan
                          catalogue (BACKPLANE_CATALOG_FILE, else the built-in one), by
                          lookup key; safe to run again. Needs BACKPLANE_STRIPE_SECRET_KEY.
`

// runStripe runs `backplane stripe <subcommand>`: 0 when done, 1 when Stripe refused or
// could not be reached, 2 for a bad command line or configuration.
func runStripe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) != 1 || args[0] != "sync" {
		_, _ = fmt.Fprint(stderr, stripeUsage)
		return 2
	}
	cfg, err := subscription.LoadConfig(config.NewEnv(getenv))
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "backplane: invalid configuration:\n%v\n", err)
		return 2
	}
	if !cfg.BillingConfigured() {
		_, _ = fmt.Fprintln(stderr, "backplane stripe sync: billing is not configured: set BACKPLANE_STRIPE_SECRET_KEY (sk_test_… for test mode)")
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := subscription.SyncCatalog(ctx, cfg, log, stdout); err != nil {
		_, _ = fmt.Fprintf(stderr, "backplane stripe sync: %v\n", err)
		return 1
	}
	return 0
}
