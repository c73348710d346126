package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/logging"
)

// decodeLines parses every JSON line written to buf.
func decodeLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), "line %q", line)
		lines = append(lines, m)
	}
	return lines
}

// decodeOne parses the single JSON line written to buf.
func decodeOne(t *testing.T, buf *bytes.Buffer) map[string]any {
	t.Helper()
	lines := decodeLines(t, buf)
	require.Len(t, lines, 1)
	return lines[0]
}

func TestNewDefaultsToJSONAtInfo(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := logging.New(&buf, logging.Options{})

	log.Debug("hidden")
	log.Info("shown", "n", 1)

	got := decodeOne(t, &buf)
	require.Equal(t, "shown", got["msg"])
	require.Equal(t, "INFO", got["level"])
	require.InDelta(t, 1, got["n"], 0)
}

func TestNewTextFormat(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := logging.New(&buf, logging.Options{Format: logging.FormatText})

	log.Info("hello", "password", "hunter2", "user", "ann")

	out := buf.String()
	require.Contains(t, out, "msg=hello")
	require.Contains(t, out, "user=ann")
	require.Contains(t, out, "password=[REDACTED]")
	require.NotContains(t, out, "hunter2")
}

func TestNewHonoursLevel(t *testing.T) {
	t.Parallel()
	var level slog.LevelVar
	level.Set(slog.LevelWarn)
	var buf bytes.Buffer
	log := logging.New(&buf, logging.Options{Level: &level})

	log.Info("dropped")
	log.Warn("kept")
	level.Set(slog.LevelDebug)
	log.Debug("kept after change")

	lines := decodeLines(t, &buf)
	require.Len(t, lines, 2)
	require.Equal(t, "kept", lines[0]["msg"])
	require.Equal(t, "kept after change", lines[1]["msg"])
}

func TestNewAddSource(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := logging.New(&buf, logging.Options{AddSource: true})

	log.InfoContext(context.Background(), "where")

	source, ok := decodeOne(t, &buf)["source"].(map[string]any)
	require.True(t, ok)
	require.Contains(t, source["file"], "logger_test.go")
}

func TestParseFormat(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]logging.Format{
		"json":   logging.FormatJSON,
		"JSON":   logging.FormatJSON,
		" text ": logging.FormatText,
	} {
		got, err := logging.ParseFormat(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "logfmt", "yaml"} {
		_, err := logging.ParseFormat(bad)
		require.Error(t, err, bad)
	}
}
