package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strconv"
)

// Secret is a string that must never reach a log line, an error message or a JSON
// body by accident: logging it through slog, formatting it with any fmt verb or
// marshaling it as JSON or text all yield "[REDACTED]". Call Reveal where the real
// value is needed, so that every such place is easy to find.
//
// fmt cannot call methods on unexported struct fields, so a Secret kept in an
// unexported field still prints in full when its struct is formatted with %v; keep
// such structs out of log and error messages.
type Secret string

// Reveal returns the secret value itself.
func (s Secret) Reveal() string { return string(s) }

// LogValue makes slog write "[REDACTED]" for the secret.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// String returns "[REDACTED]".
func (Secret) String() string { return redacted }

// Format writes "[REDACTED]" for every verb, including %#v and %x, which would
// otherwise bypass String; %q quotes it like any string.
func (Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		_, _ = io.WriteString(f, strconv.Quote(redacted))
		return
	}
	_, _ = io.WriteString(f, redacted)
}

// MarshalText returns "[REDACTED]", which encoding/json also uses, so a Secret in a
// struct sent as a response or written to disk does not leak.
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Compile-time checks that Secret redacts itself through every interface above.
var (
	_ slog.LogValuer = Secret("")
	_ fmt.Stringer   = Secret("")
	_ fmt.Formatter  = Secret("")
)
