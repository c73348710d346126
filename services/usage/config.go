package usage

import (
	"strings"
	"time"

	"github.com/backplane/backplane/internal/config"
	"github.com/backplane/backplane/internal/plans"
)

// Config holds the usage service's settings, each read from one environment variable
// named next to its field.
type Config struct {
	// Catalog holds the meters and each plan's limits (BACKPLANE_CATALOG_FILE; the
	// built-in catalogue when unset). The subscription service reads the same file, and
	// says which plan is a user's.
	Catalog *plans.Catalog
	// Retention is how many months events are kept (BACKPLANE_USAGE_RETENTION, default
	// 13, at least 2): a month's partition is dropped once all of it is older, with the
	// totals, alerts and Stripe reports of periods that ended before.
	Retention int
	// KeyTTL is how long an idempotency key is remembered
	// (BACKPLANE_USAGE_KEY_TTL, default 48h, at least 24h): a retry within it counts
	// nothing.
	KeyTTL time.Duration
	// StripeSecretKey lets the service report metered usage to Stripe
	// (BACKPLANE_STRIPE_SECRET_KEY, the subscription service's key). Unset, nothing is
	// reported.
	StripeSecretKey string
	// StripeAPIBase is where Stripe's API is reached (BACKPLANE_STRIPE_API_BASE, default
	// https://api.stripe.com); stripe-mock and tests point it elsewhere.
	StripeAPIBase string
	// ReportInterval is how often each metered subscription item's period total is
	// reported to Stripe (BACKPLANE_USAGE_REPORT_INTERVAL, default 10m, 1m to 24h).
	ReportInterval time.Duration
}

// Variables read by LoadConfig.
const (
	envRetention      = "BACKPLANE_USAGE_RETENTION"
	envKeyTTL         = "BACKPLANE_USAGE_KEY_TTL"
	envReportInterval = "BACKPLANE_USAGE_REPORT_INTERVAL"
	envStripeKey      = "BACKPLANE_STRIPE_SECRET_KEY"
	envStripeAPIBase  = "BACKPLANE_STRIPE_API_BASE"
)

// Defaults and bounds of the settings.
const (
	defaultRetention      = 13
	minRetention          = 2
	defaultKeyTTL         = 48 * time.Hour
	minKeyTTL             = 24 * time.Hour
	defaultReportInterval = 10 * time.Minute
	minReportInterval     = time.Minute
	maxReportInterval     = 24 * time.Hour
	defaultStripeAPIBase  = "https://api.stripe.com"
)

// LoadConfig reads the settings through env, with the rest of the process's
// configuration and before anything is opened. Every bad variable is reported, each
// error naming it; a bad catalogue file names the file, the plan and the field.
func LoadConfig(env *config.Env) (Config, error) {
	c := Config{
		Catalog:         plans.FromEnv(env),
		Retention:       env.Int(envRetention, defaultRetention),
		KeyTTL:          env.Duration(envKeyTTL, defaultKeyTTL),
		StripeSecretKey: string(env.Secret(envStripeKey, 1)),
		StripeAPIBase:   env.URL(envStripeAPIBase, "https", "http"),
		ReportInterval:  env.Duration(envReportInterval, defaultReportInterval),
	}
	if c.StripeAPIBase == "" {
		c.StripeAPIBase = defaultStripeAPIBase
	}
	c.StripeAPIBase = strings.TrimRight(c.StripeAPIBase, "/")
	c.validate(env)
	return c, env.Err()
}

// validate records on env every setting out of its range.
func (c Config) validate(env *config.Env) {
	if c.Retention < minRetention {
		// Events may arrive 35 days late, into last month's partition.
		env.Invalid(envRetention, "want a whole number of months, at least 2, such as 13")
	}
	if c.KeyTTL < minKeyTTL {
		env.Invalid(envKeyTTL, "want at least 24h: clients retry for up to a day")
	}
	if c.ReportInterval < minReportInterval || c.ReportInterval > maxReportInterval {
		env.Invalid(envReportInterval, "want 1m to 24h")
	}
	if k := c.StripeSecretKey; k != "" && !strings.HasPrefix(k, "sk_") && !strings.HasPrefix(k, "rk_") {
		env.Invalid(envStripeKey, "want a Stripe secret key (sk_test_…, sk_live_…) or restricted key (rk_…)")
	}
}

// defaultConfig is the configuration of an empty environment.
func defaultConfig() Config {
	c, _ := LoadConfig(config.NewEnv(func(string) string { return "" }))
	return c
}

// billing reports whether metered usage is reported to Stripe.
func (c Config) billing() bool { return c.StripeSecretKey != "" }
