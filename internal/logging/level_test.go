package logging_test

import (
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/logging"
)

func TestParseLevel(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]slog.Level{
		"debug":  slog.LevelDebug,
		"info":   slog.LevelInfo,
		"warn":   slog.LevelWarn,
		"error":  slog.LevelError,
		"DEBUG":  slog.LevelDebug,
		" Warn ": slog.LevelWarn,
	} {
		got, err := logging.ParseLevel(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "trace", "warning", "INFO+2", "fatal"} {
		_, err := logging.ParseLevel(bad)
		require.Error(t, err, bad)
	}
}
