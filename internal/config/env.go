package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Env reads settings from environment variables and records every bad one, so that a
// start-up can report them all at once. Each method returns the default (or the zero
// value) for an unset or bad variable; Err says whether any was bad. config.Load and
// every service's LoadConfig read through an Env, so a setting means the same, and fails
// with the same kind of message, wherever it is read.
//
// Messages name the variable and what it accepts. They never echo a secret or a URL,
// which may hold a password, not even a malformed one.
type Env struct {
	getenv func(string) string
	errs   []error
}

// NewEnv returns an Env reading through getenv (os.Getenv in main, a map in tests).
func NewEnv(getenv func(string) string) *Env {
	return &Env{getenv: getenv}
}

// Err returns every error recorded so far, joined; nil when every variable was good.
func (e *Env) Err() error { return errors.Join(e.errs...) }

// Invalid records that key is bad for reason. reason is shown to the operator: it must
// not contain the value when that may be secret.
func (e *Env) Invalid(key, reason string) {
	e.errs = append(e.errs, fmt.Errorf("%s: %s", key, reason))
}

// fail records a bad value with what the variable accepts.
func (e *Env) fail(key, value, allowed string) {
	e.errs = append(e.errs, fmt.Errorf("%s: %q is not valid: %s", key, value, allowed))
}

func (e *Env) raw(key string) string { return strings.TrimSpace(e.getenv(key)) }

// String returns the variable, trimmed, or def when it is unset or blank.
func (e *Env) String(key, def string) string {
	if v := e.raw(key); v != "" {
		return v
	}
	return def
}

// URL returns the variable when it is a URL with a host and one of schemes; "" when
// unset.
func (e *Env) URL(key string, schemes ...string) string {
	v := e.raw(key)
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || u.Host == "" {
		e.fail(key, "<redacted>", "want a URL with scheme "+strings.Join(schemes, ", ")+" and a host")
		return v
	}
	for _, s := range schemes {
		if u.Scheme == s {
			return v
		}
	}
	e.fail(key, u.Scheme+"://…", "want scheme "+strings.Join(schemes, ", "))
	return v
}

// Duration returns the variable as a non-negative Go duration ("500ms", "20s", "1m"),
// or def.
func (e *Env) Duration(key string, def time.Duration) time.Duration {
	v := e.raw(key)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		e.fail(key, v, "want a non-negative Go duration such as 500ms, 20s or 1m")
		return def
	}
	return d
}

// Int returns the variable as a whole number, or def. Ranges are the caller's to check,
// next to the rest of its validation.
func (e *Env) Int(key string, def int) int {
	v := e.raw(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		e.fail(key, v, "want a whole number such as 8")
		return def
	}
	return n
}

// Bool returns the variable as true or false (or 1, 0, t, f), or def.
func (e *Env) Bool(key string, def bool) bool {
	v := e.raw(key)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		e.fail(key, v, "want true or false")
		return def
	}
	return b
}

// Size returns the variable as a positive number of bytes, or def.
func (e *Env) Size(key string, def int64) int64 {
	v := e.raw(key)
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		e.fail(key, v, "want a positive number of bytes, such as 1048576")
		return def
	}
	return n
}

// Secret returns the variable's bytes, untrimmed, when it holds at least minLen of
// them; nil when unset.
func (e *Env) Secret(key string, minLen int) []byte {
	v := e.getenv(key)
	if v == "" {
		return nil
	}
	if len(v) < minLen {
		e.fail(key, "<redacted>", fmt.Sprintf("want at least %d bytes (openssl rand -base64 32)", minLen))
	}
	return []byte(v)
}

// SecretBase64 returns the variable decoded from standard base64 when that gives exactly
// size bytes; nil when unset.
func (e *Env) SecretBase64(key string, size int) []byte {
	v := e.raw(key)
	if v == "" {
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil || len(b) != size {
		e.fail(key, "<redacted>", fmt.Sprintf("want %d bytes in standard base64 (openssl rand -base64 %d)", size, size))
		return nil
	}
	return b
}

// List returns the variable's comma-separated items, each trimmed, blanks dropped.
func (e *Env) List(key string) []string {
	var out []string
	for v := range strings.SplitSeq(e.getenv(key), ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// EmailAddress returns the variable as an address with an optional display name
// ("Backplane <no-reply@example.com>"), or def.
func (e *Env) EmailAddress(key string, def *mail.Address) *mail.Address {
	v := e.raw(key)
	if v == "" {
		return def
	}
	a, err := mail.ParseAddress(v)
	if err != nil {
		e.fail(key, v, `want an address such as "Backplane <no-reply@example.com>"`)
		return def
	}
	return a
}

// EmailAddresses returns the variable's comma-separated addresses, lower-cased and
// without display names.
func (e *Env) EmailAddresses(key string) []string {
	var out []string
	for _, v := range e.List(key) {
		a, err := mail.ParseAddress(v)
		if err != nil {
			e.fail(key, v, "want comma-separated email addresses such as ops@example.com")
			continue
		}
		out = append(out, strings.ToLower(a.Address))
	}
	return out
}
