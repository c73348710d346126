package config_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/config"
	"github.com/backplane/backplane/internal/ratelimit"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	c, err := config.Load(config.Dev, env(nil))
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:8080", c.HTTPAddr)
	require.Equal(t, "127.0.0.1:9090", c.GRPCAddr)
	require.Equal(t, "127.0.0.1:8081", c.AdminAddr)
	require.Equal(t, ".data", c.DataDir)
	require.Equal(t, slog.LevelInfo, c.LogLevel)
	require.Equal(t, 20*time.Second, c.ShutdownTimeout)
	require.Equal(t, "http://127.0.0.1:8080", c.PublicURL)

	c, err = config.Load(config.Serve, env(nil))
	require.NoError(t, err)
	require.Equal(t, "0.0.0.0:9090", c.GRPCAddr)
	require.Empty(t, c.PublicURL, "serve mode derives no public URL; Require reports it missing")
}

func TestLoadReportsEveryBadVariable(t *testing.T) {
	t.Parallel()
	_, err := config.Load(config.Dev, env(map[string]string{
		"BACKPLANE_HTTP_ADDR":            "nope",
		"BACKPLANE_LOG_LEVEL":            "loud",
		"BACKPLANE_SHUTDOWN_TIMEOUT":     "soon",
		"BACKPLANE_DATABASE_URL":         "mysql://u:hunter2@db/x",
		"BACKPLANE_LOG_FORMAT":           "xml",
		"BACKPLANE_SERVICE_TOKEN_SECRET": "short-secret",
	}))
	require.Error(t, err)
	msg := err.Error()
	for _, want := range []string{"BACKPLANE_HTTP_ADDR", "BACKPLANE_LOG_LEVEL", "debug, info, warn or error",
		"BACKPLANE_SHUTDOWN_TIMEOUT", "BACKPLANE_DATABASE_URL", "postgres", "BACKPLANE_LOG_FORMAT"} {
		require.Contains(t, msg, want)
	}
	require.NotContains(t, msg, "hunter2", "a bad URL must not echo its password")
	require.Contains(t, msg, "BACKPLANE_SERVICE_TOKEN_SECRET")
	require.NotContains(t, msg, "short-secret", "a bad secret is not echoed")
}

func TestLoadReadsValues(t *testing.T) {
	t.Parallel()
	c, err := config.Load(config.Serve, env(map[string]string{
		"BACKPLANE_PUBLIC_URL":           "https://app.example.com",
		"BACKPLANE_SERVICE_TOKEN_SECRET": "0123456789abcdef0123456789abcdef",
		"BACKPLANE_DATABASE_URL":         "postgres://app@db:5432/backplane",
		"BACKPLANE_REDIS_URL":            "redis://cache:6379/0",
		"BACKPLANE_AUTH_ADDR":            "dns:///backplane-auth:9090",
		"BACKPLANE_LOG_LEVEL":            "DEBUG",
		"OTEL_EXPORTER_OTLP_ENDPOINT":    "http://collector:4317",
		"BACKPLANE_USAGE_ADDR":           "dns:///backplane-usage:9090",
	}), "auth", "notification")
	require.NoError(t, err)
	require.Equal(t, map[string]string{"auth": "dns:///backplane-auth:9090"}, c.ServiceAddrs,
		"addresses are read for the services named, and only for them")
	require.Equal(t, "https://app.example.com", c.Issuer)
	require.Equal(t, slog.LevelDebug, c.LogLevel)
	require.Equal(t, "http://collector:4317", c.OTLPEndpoint)
	require.NoError(t, c.Require(true, true, "auth"))
}

func TestRequireNamesWhatIsMissing(t *testing.T) {
	t.Parallel()
	c, err := config.Load(config.Serve, env(nil))
	require.NoError(t, err)
	err = c.Require(true, true, "auth", "notification")
	require.Error(t, err)
	for _, want := range []string{"BACKPLANE_DATABASE_URL", "BACKPLANE_REDIS_URL", "BACKPLANE_AUTH_ADDR", "BACKPLANE_NOTIFICATION_ADDR", "BACKPLANE_SERVICE_TOKEN_SECRET", "BACKPLANE_PUBLIC_URL"} {
		require.Contains(t, err.Error(), want)
	}
}

func TestLoadEdge(t *testing.T) {
	t.Parallel()
	c, err := config.Load(config.Serve, env(map[string]string{
		"BACKPLANE_TRUSTED_PROXIES":         "10.0.0.0/8, 192.0.2.1",
		"BACKPLANE_CLIENT_IP_HEADER":        "CF-Connecting-IP",
		"BACKPLANE_CORS_ALLOWED_ORIGINS":    "https://app.example.com,http://localhost:3000",
		"BACKPLANE_CORS_ALLOW_CREDENTIALS":  "true",
		"BACKPLANE_MAX_BODY_BYTES":          "2048",
		"BACKPLANE_RATE_LIMIT_FAILURE_MODE": "closed",
	}))
	require.NoError(t, err)
	require.Equal(t, []string{"10.0.0.0/8", "192.0.2.1"}, c.Edge.TrustedProxies)
	require.Equal(t, "CF-Connecting-IP", c.Edge.ClientIPHeader)
	require.Equal(t, []string{"https://app.example.com", "http://localhost:3000"}, c.Edge.CORSAllowedOrigins)
	require.True(t, c.Edge.CORSAllowCredentials)
	require.EqualValues(t, 2048, c.Edge.MaxBodyBytes)
	require.Equal(t, ratelimit.FailClosed, c.Edge.RateLimitFailureMode)

	c, err = config.Load(config.Dev, env(nil))
	require.NoError(t, err)
	require.EqualValues(t, 1<<20, c.Edge.MaxBodyBytes)
	require.Equal(t, ratelimit.FailOpen, c.Edge.RateLimitFailureMode, "fail open by default")
	require.Equal(t, 60, c.Edge.RateLimitAnonymous.Rate)
	require.Equal(t, time.Minute, c.Edge.RateLimitAnonymous.Period)
}

func TestLoadEdgeRejects(t *testing.T) {
	t.Parallel()
	_, err := config.Load(config.Serve, env(map[string]string{
		"BACKPLANE_TRUSTED_PROXIES":         "10.0.0.0/99",
		"BACKPLANE_CORS_ALLOWED_ORIGINS":    "*",
		"BACKPLANE_CORS_ALLOW_CREDENTIALS":  "yes please",
		"BACKPLANE_MAX_BODY_BYTES":          "-1",
		"BACKPLANE_TLS_CERT_FILE":           "/etc/cert.pem",
		"BACKPLANE_RATE_LIMIT_FAILURE_MODE": "sometimes",
		"BACKPLANE_RATE_LIMIT_ANONYMOUS":    "lots",
	}))
	require.Error(t, err)
	for _, want := range []string{"BACKPLANE_TRUSTED_PROXIES", "BACKPLANE_CORS_ALLOW_CREDENTIALS", "BACKPLANE_MAX_BODY_BYTES",
		"BACKPLANE_TLS_KEY_FILE", "BACKPLANE_RATE_LIMIT_FAILURE_MODE", "BACKPLANE_RATE_LIMIT_ANONYMOUS"} {
		require.Contains(t, err.Error(), want)
	}
	_, err = config.Load(config.Serve, env(map[string]string{
		"BACKPLANE_CORS_ALLOWED_ORIGINS":   "*",
		"BACKPLANE_CORS_ALLOW_CREDENTIALS": "true",
	}))
	require.ErrorContains(t, err, "cannot be combined")
	_, err = config.Load(config.Serve, env(map[string]string{"BACKPLANE_CORS_ALLOWED_ORIGINS": "https://app.example.com/path"}))
	require.ErrorContains(t, err, "BACKPLANE_CORS_ALLOWED_ORIGINS")
}

func TestIssuerFollowsThePublicURLUnlessSet(t *testing.T) {
	t.Parallel()
	c, err := config.Load(config.Serve, env(map[string]string{"BACKPLANE_PUBLIC_URL": "https://app.example.com/"}))
	require.NoError(t, err)
	require.Equal(t, "https://app.example.com", c.Issuer)
	c, err = config.Load(config.Dev, env(nil))
	require.NoError(t, err)
	require.Equal(t, "http://127.0.0.1:8080", c.Issuer)
	c, err = config.Load(config.Serve, env(map[string]string{
		"BACKPLANE_PUBLIC_URL": "https://app.example.com", "BACKPLANE_JWT_ISSUER": "https://id.example.com",
	}))
	require.NoError(t, err)
	require.Equal(t, "https://id.example.com", c.Issuer)
}

func TestMigrateOnStartIsOnUnlessTurnedOff(t *testing.T) {
	t.Parallel()
	c, err := config.Load(config.Serve, env(nil))
	require.NoError(t, err)
	require.True(t, c.MigrateOnStart, "by default a piece migrates its service as it starts")

	c, err = config.Load(config.Serve, env(map[string]string{"BACKPLANE_MIGRATE_ON_START": "false"}))
	require.NoError(t, err)
	require.False(t, c.MigrateOnStart)

	_, err = config.Load(config.Serve, env(map[string]string{"BACKPLANE_MIGRATE_ON_START": "sometimes"}))
	require.ErrorContains(t, err, "BACKPLANE_MIGRATE_ON_START")
}

func TestProfilesAreOffUnlessTurnedOn(t *testing.T) {
	t.Parallel()
	c, err := config.Load(config.Dev, env(nil))
	require.NoError(t, err)
	require.False(t, c.Pprof, "the admin port serves no profiles by default")
	c, err = config.Load(config.Dev, env(map[string]string{"BACKPLANE_PPROF": "true"}))
	require.NoError(t, err)
	require.True(t, c.Pprof)
}
