package logging_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/logging"
)

func TestSecretRedactsInLogs(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := logging.New(&buf, logging.Options{})
	s := logging.Secret("hunter2")

	// An innocent key: only the type protects the value here.
	log.Info("x", "dsn", s, "nested", struct{ DSN logging.Secret }{s})

	got := decodeOne(t, &buf)
	require.Equal(t, "[REDACTED]", got["dsn"])
	require.Equal(t, map[string]any{"DSN": "[REDACTED]"}, got["nested"])
	require.NotContains(t, buf.String(), "hunter2")
}

func TestSecretRedactsInFormatting(t *testing.T) {
	t.Parallel()
	s := logging.Secret("hunter2")
	for _, verb := range []string{"%v", "%s", "%+v", "%#v", "%x", "%10s", "%d"} {
		require.Equal(t, "[REDACTED]", fmt.Sprintf(verb, s), verb)
	}
	require.Equal(t, `"[REDACTED]"`, fmt.Sprintf("%q", s))
	require.Equal(t, "[REDACTED]", s.String())
	require.Equal(t, "{[REDACTED]}", fmt.Sprintf("%v", struct{ Key logging.Secret }{s}))
	require.Equal(t, "hunter2", s.Reveal())
}

func TestSecretRedactsInJSON(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(struct {
		Key logging.Secret `json:"key"`
	}{logging.Secret("hunter2")})
	require.NoError(t, err)
	require.JSONEq(t, `{"key":"[REDACTED]"}`, string(b))
}
