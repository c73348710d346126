package subscription

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	subscriptionv1 "github.com/backplane/backplane/gen/backplane/subscription/v1"
	"github.com/backplane/backplane/internal/config"
	"github.com/backplane/backplane/internal/dbtest"
	"github.com/backplane/backplane/internal/redistest"
	"github.com/backplane/backplane/internal/service"
)

func env(vars map[string]string) *config.Env {
	return config.NewEnv(func(k string) string { return vars[k] })
}

func TestDefinitionStartsTheService(t *testing.T) {
	t.Parallel()
	def := Definition()
	require.Equal(t, "subscription", def.Name)
	require.Equal(t, []string{"auth", "notification"}, def.Needs)

	start, err := def.LoadConfig(env(nil))
	require.NoError(t, err)
	inst, err := start(context.Background(), service.Deps{
		Logger:    slog.New(slog.DiscardHandler),
		DB:        dbtest.NewPool(t, "subscription", def.Migrations),
		Redis:     redistest.Client(t),
		PublicURL: testPublicURL,
	})
	require.NoError(t, err)
	srv := grpc.NewServer()
	inst.Register(srv)
	require.Contains(t, srv.GetServiceInfo(), "backplane.subscription.v1.SubscriptionService")

	_, err = New(context.Background(), Config{}, service.Deps{Logger: slog.New(slog.DiscardHandler)})
	require.Error(t, err, "without its database and Redis the service does not start")
}

func TestBillingIsOffWithoutAKey(t *testing.T) {
	t.Parallel()
	cfg, err := LoadConfig(env(nil))
	require.NoError(t, err)
	require.False(t, cfg.BillingConfigured())
	require.Equal(t, "https://api.stripe.com", cfg.StripeAPIBase)
	require.Equal(t, "built-in", cfg.Catalog.Source())
}

func TestBadSettingsNameTheirVariable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	catalog := filepath.Join(dir, "catalog.yaml")
	require.NoError(t, os.WriteFile(catalog, []byte("plans:\n  - {id: free, display_name: Free, rate_limit_per_minute: 60, quota_limits: {api_calls: 10}}\n"), 0o600))
	_, err := LoadConfig(env(map[string]string{
		"BACKPLANE_CATALOG_FILE":             catalog,
		"BACKPLANE_STRIPE_SECRET_KEY":        "pk_test_publishable",
		"BACKPLANE_STRIPE_WEBHOOK_SECRET":    "secret",
		"BACKPLANE_STRIPE_API_BASE":          "ftp://stripe",
		"BACKPLANE_ALLOWED_REDIRECT_ORIGINS": "https://app.example.com/path",
	}))
	require.ErrorContains(t, err, "BACKPLANE_CATALOG_FILE: "+catalog+`: plan "free": quota_limits.api_calls: no meter of this name`)
	require.ErrorContains(t, err, "BACKPLANE_STRIPE_SECRET_KEY: want a Stripe secret key")
	require.NotContains(t, err.Error(), "pk_test_publishable", "secrets are never echoed")
	require.ErrorContains(t, err, "BACKPLANE_STRIPE_WEBHOOK_SECRET")
	require.ErrorContains(t, err, "BACKPLANE_STRIPE_API_BASE")
	require.ErrorContains(t, err, "BACKPLANE_ALLOWED_REDIRECT_ORIGINS")

	cfg, err := LoadConfig(env(map[string]string{
		"BACKPLANE_STRIPE_SECRET_KEY":        "sk_test_abc",
		"BACKPLANE_STRIPE_WEBHOOK_SECRET":    "whsec_abc",
		"BACKPLANE_STRIPE_API_BASE":          "http://127.0.0.1:12111/",
		"BACKPLANE_ALLOWED_REDIRECT_ORIGINS": "https://App.Example.com:443, http://localhost:3000",
	}))
	require.NoError(t, err)
	require.True(t, cfg.BillingConfigured())
	require.Equal(t, "http://127.0.0.1:12111", cfg.StripeAPIBase)
	require.Equal(t, []string{"https://app.example.com", "http://localhost:3000"}, cfg.AllowedRedirectOrigins)
}

// The service answers its own ListPlans once started, whatever the Stripe setup.
func TestStartedWithoutStripeItSellsTheCatalogue(t *testing.T) {
	t.Parallel()
	b := setup(t)
	resp, err := b.srv.ListPlans(context.Background(), &subscriptionv1.ListPlansRequest{})
	require.NoError(t, err)
	require.Len(t, resp.GetPlans(), 4)
}
