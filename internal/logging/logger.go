package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Format selects how log records are encoded.
type Format string

// The formats New understands.
const (
	// FormatJSON writes one JSON object per line; it is what log shippers expect, so it
	// is the default.
	FormatJSON Format = "json"
	// FormatText writes logfmt-style key=value lines, easier to read on a terminal.
	FormatText Format = "text"
)

// ParseFormat turns a configuration string ("json" or "text", any case) into a
// Format. Validate configuration with it: New itself falls back to JSON rather than
// fail, so that a logger can always be built.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(strings.TrimSpace(s))); f {
	case FormatJSON, FormatText:
		return f, nil
	default:
		return "", fmt.Errorf("logging: unknown format %q (want json or text)", s)
	}
}

// Options configures New. The zero value logs JSON at info level.
type Options struct {
	// Level is the minimum level written. Nil means slog.LevelInfo; pass a
	// *slog.LevelVar to change the level while the process runs.
	Level slog.Leveler
	// Format is the encoding; anything but FormatText means JSON.
	Format Format
	// AddSource adds the file and line of the logging call to every record.
	AddSource bool
}

// New returns a logger writing to w that adds trace and request correlation from the
// context and redacts attributes whose keys look like secrets. On a Buffer, records at
// warn level and above flush it. Log through the
// ...Context methods (InfoContext, ErrorContext) so the correlation ids are found.
func New(w io.Writer, opts Options) *slog.Logger {
	handlerOpts := &slog.HandlerOptions{
		Level:     opts.Level,
		AddSource: opts.AddSource,
		// Redacting in ReplaceAttr rather than in a wrapping handler means slog has
		// already resolved LogValuers and walks every nested group for us, including
		// attributes bound earlier with Logger.With.
		ReplaceAttr: redactAttr,
	}
	var h slog.Handler
	if opts.Format == FormatText {
		h = slog.NewTextHandler(w, handlerOpts)
	} else {
		h = slog.NewJSONHandler(w, handlerOpts)
	}
	if b, ok := w.(*Buffer); ok {
		h = flushingHandler{next: h, buf: b}
	}
	return slog.New(newContextHandler(h))
}
