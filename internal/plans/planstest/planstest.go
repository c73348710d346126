// Package planstest prepares plan catalogues for benchmarks that drive one user at full
// speed through the real limiter and usage counting.
package planstest

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

var (
	rateLimit = regexp.MustCompile(`rate_limit_per_minute: \d+`)
	apiCalls  = regexp.MustCompile(`api_calls: \d+`)
)

// LiftedCatalog writes the plan catalogue at path into dir with every plan's rate limit
// and API-call quota raised out of reach, and returns the copy's path: the free plan's
// 600 calls a minute would otherwise refuse the load, while the limiter and the usage
// counting still run on every call.
func LiftedCatalog(path, dir string) (string, error) {
	raw, err := os.ReadFile(path) //nolint:gosec // the catalogue the caller names
	if err != nil {
		return "", fmt.Errorf("plan catalogue: %w", err)
	}
	s := rateLimit.ReplaceAllString(string(raw), "rate_limit_per_minute: 6000000")
	s = apiCalls.ReplaceAllString(s, "api_calls: 1000000000000")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	out := filepath.Join(dir, "catalog.yaml")
	return out, os.WriteFile(out, []byte(s), 0o600) //nolint:gosec // into the caller's own directory
}
