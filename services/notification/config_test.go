package notification

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/config"
)

func env(vars map[string]string) *config.Env {
	return config.NewEnv(func(k string) string { return vars[k] })
}

func TestLoadConfigDefaults(t *testing.T) {
	t.Parallel()
	s, err := LoadConfig(env(nil))
	require.NoError(t, err)
	require.Empty(t, s.SendgridAPIKey)
	require.Equal(t, "https://api.sendgrid.com", s.SendgridBaseURL)
	require.Equal(t, 8, s.MaxAttempts)
	require.Equal(t, time.Second, s.RetryBase)
	require.Nil(t, s.WebhookKey)
	require.Nil(t, s.SigningKey)
}

func TestLoadConfigNamesEveryBadVariable(t *testing.T) {
	t.Parallel()
	_, err := LoadConfig(env(map[string]string{
		"BACKPLANE_SENDGRID_API_KEY":            "SG.x",
		"BACKPLANE_SENDGRID_BASE_URL":           "ftp://nope",
		"BACKPLANE_NOTIFY_MAX_ATTEMPTS":         "0",
		"BACKPLANE_NOTIFY_RETRY_BASE":           "soon",
		"BACKPLANE_NOTIFY_SIGNING_KEY":          "short",
		"BACKPLANE_SENDGRID_WEBHOOK_PUBLIC_KEY": "not base64!",
	}))
	require.Error(t, err)
	for _, name := range []string{
		"BACKPLANE_SENDGRID_BASE_URL", "BACKPLANE_EMAIL_FROM", "BACKPLANE_NOTIFY_MAX_ATTEMPTS",
		"BACKPLANE_NOTIFY_RETRY_BASE", "BACKPLANE_NOTIFY_SIGNING_KEY", "BACKPLANE_SENDGRID_WEBHOOK_PUBLIC_KEY",
	} {
		require.ErrorContains(t, err, name)
	}
}

func TestLoadConfigRefusesANonECDSAWebhookKeyWithoutPanicking(t *testing.T) {
	t.Parallel()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKIXPublicKey(pub)
	require.NoError(t, err)

	_, err = LoadConfig(env(map[string]string{"BACKPLANE_SENDGRID_WEBHOOK_PUBLIC_KEY": base64.StdEncoding.EncodeToString(der)}))
	require.ErrorContains(t, err, "not an ECDSA public key")
	_, err = LoadConfig(env(map[string]string{"BACKPLANE_SENDGRID_WEBHOOK_PUBLIC_KEY": base64.StdEncoding.EncodeToString([]byte("junk"))}))
	require.ErrorContains(t, err, "not a public key")
}

func TestLoadConfigReadsEverything(t *testing.T) {
	t.Parallel()
	s, err := LoadConfig(env(map[string]string{
		"BACKPLANE_SENDGRID_API_KEY":     "SG.x",
		"BACKPLANE_SENDGRID_BASE_URL":    "http://127.0.0.1:9999/",
		"BACKPLANE_EMAIL_FROM":           "Acme <hello@acme.test>",
		"BACKPLANE_NOTIFY_MAX_ATTEMPTS":  "3",
		"BACKPLANE_NOTIFY_RETRY_BASE":    "2s",
		"BACKPLANE_NOTIFY_RETRY_MAX":     "1m",
		"BACKPLANE_NOTIFY_WORKERS":       "0",
		"BACKPLANE_NOTIFY_LEASE":         "30s",
		"BACKPLANE_NOTIFY_POLL_INTERVAL": "250ms",
		"BACKPLANE_NOTIFY_SIGNING_KEY":   "0123456789abcdef0123456789abcdef",
	}))
	require.NoError(t, err)
	require.Equal(t, "http://127.0.0.1:9999", s.SendgridBaseURL)
	require.Equal(t, "hello@acme.test", s.EmailFrom.Address)
	require.Equal(t, 3, s.MaxAttempts)
	require.Equal(t, 2*time.Second, s.RetryBase)
	require.Equal(t, time.Minute, s.RetryMax)
	require.Equal(t, 0, s.Workers)
	require.Equal(t, 15*time.Second, s.sendTimeout())
	require.Equal(t, 250*time.Millisecond, s.PollInterval)
}
