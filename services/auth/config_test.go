package auth

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/config"
)

func env(m map[string]string) *config.Env {
	return config.NewEnv(func(k string) string { return m[k] })
}

func TestLoadConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := LoadConfig(env(nil))
	require.NoError(t, err)
	require.Equal(t, 15*time.Minute, cfg.AccessTokenTTL)
	require.Equal(t, 30*24*time.Hour, cfg.RefreshTokenTTL)
	require.Equal(t, 10*time.Second, cfg.RefreshReuseGrace)
	require.Equal(t, 5, cfg.LoginMaxFailures)
	require.Empty(t, cfg.AdminEmails)
	require.Equal(t, SignupVerify, cfg.SignupMode, "the default reveals no account")
}

func TestLoadConfigNamesBadVariables(t *testing.T) {
	t.Parallel()
	for key, value := range map[string]string{
		"BACKPLANE_ACCESS_TOKEN_TTL":          "forever",
		"BACKPLANE_REFRESH_TOKEN_TTL":         "1m",
		"BACKPLANE_REFRESH_REUSE_GRACE":       "-1s",
		"BACKPLANE_LOGIN_MAX_FAILURES":        "0",
		"BACKPLANE_ADMIN_EMAILS":              "not-an-email",
		"BACKPLANE_KEY_ENCRYPTION_KEY":        "c2hvcnQ=",
		"BACKPLANE_PASSWORD_HASH_CONCURRENCY": "-1",
		"BACKPLANE_SIGNING_KEY_ROTATION":      "1m",
		"BACKPLANE_SIGNUP_MODE":               "open",
	} {
		_, err := LoadConfig(env(map[string]string{key: value}))
		require.ErrorContains(t, err, key, value)
	}
	cfg, err := LoadConfig(env(map[string]string{
		"BACKPLANE_ADMIN_EMAILS": " Boss@Example.com, ops@example.com ", "BACKPLANE_REFRESH_REUSE_GRACE": "0s",
	}))
	require.NoError(t, err)
	require.Equal(t, []string{"boss@example.com", "ops@example.com"}, cfg.AdminEmails)
	require.Zero(t, cfg.RefreshReuseGrace)
}
