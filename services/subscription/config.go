package subscription

import "github.com/backplane/backplane/internal/config"

// Config holds the subscription service's settings, each read from one environment variable
// named next to its field. It has none yet; Stripe's keys and prices arrive with the billing work.
type Config struct{}

// LoadConfig reads the settings through env, with the rest of the process's
// configuration and before anything is opened. Every bad variable is reported, each
// error naming it.
func LoadConfig(env *config.Env) (Config, error) {
	return Config{}, env.Err()
}
