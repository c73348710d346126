// Package logging builds Backplane's structured slog loggers.
//
// Every logger made by New writes one JSON (or text) object per line, carries the
// trace_id, span_id and request_id (package requestid holds it) of the context it is
// called with, and replaces the value of any attribute whose key looks like a secret
// with "[REDACTED]". Loggers are values passed to whoever needs them: this package
// never touches slog.Default.
//
// Redaction works on keys, not on contents: a token logged under an innocent key, or
// inside a struct or map logged as a single value, is not caught. Hold secrets in a
// Secret so they redact themselves wherever they end up.
package logging
