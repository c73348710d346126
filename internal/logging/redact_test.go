package logging_test

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/logging"
)

// credentials resolves, through slog.LogValuer, to a group holding a secret.
type credentials struct{ user, password string }

func (c credentials) LogValue() slog.Value {
	return slog.GroupValue(slog.String("user", c.user), slog.String("password", c.password))
}

// group returns the JSON object m holds under key, failing the test if there is none.
func group(t *testing.T, m map[string]any, key string) map[string]any {
	t.Helper()
	g, ok := m[key].(map[string]any)
	require.True(t, ok, "no group %q in %v", key, m)
	return g
}

func TestRedactsSecretKeysAtTopLevel(t *testing.T) {
	t.Parallel()
	keys := []string{
		"password", "Password", "passwd", "secret", "client_secret", "token",
		"access_token", "refresh_token", "Authorization", "api_key", "apikey",
		"X-Api-Key", "cookie", "Set-Cookie", "Stripe-Signature", "stripe_signature",
		"private_key", "privateKey", "accessToken",
	}
	var buf bytes.Buffer
	log := logging.New(&buf, logging.Options{})
	for _, key := range keys {
		log.Info("x", key, "hunter2")
	}

	lines := decodeLines(t, &buf)
	require.Len(t, lines, len(keys))
	for i, key := range keys {
		require.Equal(t, "[REDACTED]", lines[i][key], key)
	}
	require.NotContains(t, buf.String(), "hunter2")
}

func TestRedactKeepsOrdinaryKeys(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := logging.New(&buf, logging.Options{})

	log.Info("x", "user", "ann", "author", "bob", "path", "/v1/users")

	got := decodeOne(t, &buf)
	require.Equal(t, "ann", got["user"])
	require.Equal(t, "bob", got["author"])
	require.Equal(t, "/v1/users", got["path"])
}

func TestRedactsInsideGroups(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := logging.New(&buf, logging.Options{})

	log.Info("login",
		slog.Group("request",
			slog.String("path", "/login"),
			slog.Group("headers",
				slog.String("Authorization", "Bearer hunter2"),
				slog.String("Accept", "application/json"),
			),
			slog.String("refresh_token", "hunter2"),
		),
	)

	got := decodeOne(t, &buf)
	request := group(t, got, "request")
	require.Equal(t, "/login", request["path"])
	require.Equal(t, "[REDACTED]", request["refresh_token"])
	headers := group(t, request, "headers")
	require.Equal(t, "[REDACTED]", headers["Authorization"])
	require.Equal(t, "application/json", headers["Accept"])
	require.NotContains(t, buf.String(), "hunter2")
}

func TestRedactsWholeGroupWithSecretName(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := logging.New(&buf, logging.Options{})

	log.Info("x", slog.Group("api_key", slog.String("id", "k1"), slog.String("value", "hunter2")))
	log.WithGroup("cookie").Info("y", "session", "hunter2")

	require.NotContains(t, buf.String(), "hunter2")
	require.NotContains(t, buf.String(), "k1")
}

func TestRedactsBoundAndResolvedAttrs(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := logging.New(&buf, logging.Options{}).
		With("token", "hunter2").
		WithGroup("db").
		With("password", "hunter2")

	log.Info("x", "login", credentials{user: "ann", password: "hunter2"})

	got := decodeOne(t, &buf)
	require.Equal(t, "[REDACTED]", got["token"])
	db := group(t, got, "db")
	require.Equal(t, "[REDACTED]", db["password"])
	login := group(t, db, "login")
	require.Equal(t, "ann", login["user"])
	require.Equal(t, "[REDACTED]", login["password"])
	require.NotContains(t, buf.String(), "hunter2")
}
