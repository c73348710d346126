package logging

import (
	"fmt"
	"log/slog"
	"strings"
)

// ParseLevel turns a configuration string (debug, info, warn or error, any case) into
// a slog.Level.
//
// It is stricter than slog.Level.UnmarshalText, which also accepts forms such as
// "INFO+2": a typo in configuration should fail at start-up, not silently pick a level.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	default:
		return 0, fmt.Errorf("logging: unknown level %q (want debug, info, warn or error)", s)
	}
}
