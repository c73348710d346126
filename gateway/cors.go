package gateway

import (
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/rs/cors"
)

// CORSConfig says which browser origins may call the REST front door.
type CORSConfig struct {
	// AllowedOrigins are exact origins ("https://app.example.com"). Empty allows none.
	AllowedOrigins []string
	// AllowCredentials lets browsers send cookies and HTTP auth cross-origin.
	AllowCredentials bool
	// MaxAge is how long browsers may cache a preflight answer.
	MaxAge time.Duration
}

func (c CORSConfig) validate() error {
	if slices.Contains(c.AllowedOrigins, "*") {
		if c.AllowCredentials {
			return errors.New("gateway: CORS origin * cannot be combined with credentials: list the origins")
		}
		return errors.New("gateway: CORS origin * is not accepted: list the exact origins")
	}
	return nil
}

// withCORS answers preflight requests at the edge (they never reach a service) and adds
// CORS headers for listed origins only. Origins are matched exactly: wildcards have let
// attacker-registered look-alike domains in elsewhere.
func withCORS(cfg CORSConfig, next http.Handler) http.Handler {
	allowed := map[string]bool{}
	for _, o := range cfg.AllowedOrigins {
		allowed[o] = true
	}
	c := cors.New(cors.Options{
		AllowOriginFunc:  func(origin string) bool { return allowed[origin] },
		AllowedMethods:   []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete},
		AllowedHeaders:   append([]string{"Authorization", "Content-Type", "X-Request-Id", "Idempotency-Key"}, browserRPCHeaders...),
		ExposedHeaders:   append([]string{"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "Retry-After", "X-Request-Id", "WWW-Authenticate"}, browserRPCExposedHeaders...),
		AllowCredentials: cfg.AllowCredentials,
		MaxAge:           int(cfg.MaxAge.Seconds()),
	})
	return c.Handler(next)
}
