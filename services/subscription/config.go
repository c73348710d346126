package subscription

import (
	"net/url"
	"strings"

	"github.com/backplane/backplane/internal/config"
	"github.com/backplane/backplane/internal/plans"
)

// Config holds the subscription service's settings, each read from one environment
// variable named next to its field. The public URL, the default redirect origin, is
// the process's setting and arrives in service.Deps.
type Config struct {
	// Catalog is the plans and meters on sale (BACKPLANE_CATALOG_FILE; the built-in
	// catalogue when unset).
	Catalog *plans.Catalog
	// StripeSecretKey is the Stripe API key (BACKPLANE_STRIPE_SECRET_KEY, sk_test_…,
	// sk_live_… or a restricted rk_… key). Unset, billing is off: plans and entitlements
	// work, everyone is on the free plan, and the RPCs that need Stripe answer
	// FAILED_PRECONDITION.
	StripeSecretKey string
	// StripeWebhookSecret verifies the signature of Stripe's webhook deliveries
	// (BACKPLANE_STRIPE_WEBHOOK_SECRET, whsec_…).
	StripeWebhookSecret string
	// StripeAPIBase is where Stripe's API is reached (BACKPLANE_STRIPE_API_BASE, default
	// https://api.stripe.com); stripe-mock and tests point it elsewhere.
	StripeAPIBase string
	// AllowedRedirectOrigins are the origins (scheme://host[:port]) that checkout and
	// portal URLs may lead back to (BACKPLANE_ALLOWED_REDIRECT_ORIGINS, comma-separated;
	// default: the public URL's origin), so that the API is no open redirect.
	AllowedRedirectOrigins []string
}

// Variables read by LoadConfig.
const (
	envSecretKey       = "BACKPLANE_STRIPE_SECRET_KEY"
	envWebhookSecret   = "BACKPLANE_STRIPE_WEBHOOK_SECRET"
	envAPIBase         = "BACKPLANE_STRIPE_API_BASE"
	envRedirectOrigins = "BACKPLANE_ALLOWED_REDIRECT_ORIGINS"
)

// defaultStripeAPIBase is Stripe's API.
const defaultStripeAPIBase = "https://api.stripe.com"

// LoadConfig reads the settings through env, with the rest of the process's
// configuration and before anything is opened. Every bad variable is reported, each
// error naming it; a bad catalogue file names the file, the plan and the field.
func LoadConfig(env *config.Env) (Config, error) {
	c := Config{
		Catalog:             plans.FromEnv(env),
		StripeSecretKey:     string(env.Secret(envSecretKey, 1)),
		StripeWebhookSecret: string(env.Secret(envWebhookSecret, 1)),
		StripeAPIBase:       env.URL(envAPIBase, "https", "http"),
	}
	if c.StripeAPIBase == "" {
		c.StripeAPIBase = defaultStripeAPIBase
	}
	c.StripeAPIBase = strings.TrimRight(c.StripeAPIBase, "/")
	if k := c.StripeSecretKey; k != "" && !strings.HasPrefix(k, "sk_") && !strings.HasPrefix(k, "rk_") {
		env.Invalid(envSecretKey, "want a Stripe secret key (sk_test_…, sk_live_…) or restricted key (rk_…)")
	}
	if s := c.StripeWebhookSecret; s != "" && !strings.HasPrefix(s, "whsec_") {
		env.Invalid(envWebhookSecret, "want the endpoint's signing secret, whsec_… (from the Dashboard or `stripe listen`)")
	}
	for _, o := range env.List(envRedirectOrigins) {
		origin, ok := parseOrigin(o)
		if !ok {
			env.Invalid(envRedirectOrigins, "want comma-separated origins such as https://app.example.com (scheme and host, no path)")
			break
		}
		c.AllowedRedirectOrigins = append(c.AllowedRedirectOrigins, origin)
	}
	return c, env.Err()
}

// BillingConfigured reports whether a Stripe key is set.
func (c Config) BillingConfigured() bool { return c.StripeSecretKey != "" }

// parseOrigin returns raw as a normalised origin (lower-case scheme and host, no
// default port), when it is one: http or https, a host, nothing after it.
func parseOrigin(raw string) (string, bool) {
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", false
	}
	return originOf(u), true
}

// originOf is u's scheme://host[:port], lower-cased, without the scheme's default port.
func originOf(u *url.URL) string {
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		return scheme + "://" + host + ":" + port
	}
	return scheme + "://" + host
}
