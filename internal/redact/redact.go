// Package redact keeps passwords out of error messages. Connection libraries echo the URL
// or connection string they were given when it fails to parse or to connect, and those
// messages end up in logs.
package redact

import (
	"net/url"
	"slices"
	"strings"
)

// UserinfoPasswords returns the password of a URL's userinfo (scheme://user:PASSWORD@host),
// found without parsing the URL: the strings that fail to parse are exactly the ones
// whose parse errors quote them.
func UserinfoPasswords(raw string) []string {
	_, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil
	}
	// The userinfo ends at the last @ of the authority, which ends at the first /, ? or
	// #. Trying the last @ of the whole string as well catches passwords that contain an
	// unescaped /.
	authority := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority = rest[:i]
	}
	var found []string
	for _, s := range []string{authority, rest} {
		at := strings.LastIndex(s, "@")
		if at < 0 {
			continue
		}
		if _, pw, ok := strings.Cut(s[:at], ":"); ok && pw != "" {
			found = append(found, pw)
		}
	}
	return found
}

// Spellings adds the percent-decoded forms of each secret, as a library may echo either,
// and removes duplicates and empties.
func Spellings(secrets []string) []string {
	out := slices.Clone(secrets)
	for _, s := range secrets {
		for _, unescape := range []func(string) (string, error){url.PathUnescape, url.QueryUnescape} {
			if d, err := unescape(s); err == nil && d != s {
				out = append(out, d)
			}
		}
	}
	out = slices.DeleteFunc(out, func(s string) bool { return s == "" })
	slices.Sort(out)
	return slices.Compact(out)
}

// Error returns err with every secret blanked out of its message. It still unwraps to
// err, so errors.Is keeps working (for a canceled context, say); callers only pass
// errors whose chain cannot hold the secret itself.
func Error(err error, secrets []string) error {
	msg := err.Error()
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
		}
	}
	return &redactedError{msg: msg, err: err}
}

// redactedError is an error whose message has had secrets removed.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
