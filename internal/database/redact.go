package database

import (
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// keywordPassword finds password=... in a keyword/value connection string,
// quoted or not.
var keywordPassword = regexp.MustCompile(`password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)`)

// passwordsIn returns every spelling of the password in connString that an
// error message could echo: as written and percent-decoded, from the URL
// form or the keyword/value form. It works on strings that fail to parse,
// because those are exactly the ones whose parse errors quote them.
func passwordsIn(connString string) []string {
	var found []string
	if _, rest, ok := strings.Cut(connString, "://"); ok {
		// The userinfo ends at the last @ of the authority, which ends at the
		// first /, ? or #. Trying the last @ of the whole string as well
		// catches passwords that contain an unescaped /.
		authority := rest
		if i := strings.IndexAny(rest, "/?#"); i >= 0 {
			authority = rest[:i]
		}
		for _, s := range []string{authority, rest} {
			at := strings.LastIndex(s, "@")
			if at < 0 {
				continue
			}
			if _, pw, ok := strings.Cut(s[:at], ":"); ok && pw != "" {
				found = append(found, pw)
			}
		}
	}
	for _, m := range keywordPassword.FindAllStringSubmatch(connString, -1) {
		found = append(found, strings.Trim(m[1], "'"))
	}
	for _, pw := range found {
		if decoded, err := url.PathUnescape(pw); err == nil && decoded != pw {
			found = append(found, decoded)
		}
	}
	slices.Sort(found)
	return slices.Compact(found)
}

// redact returns err with every given secret blanked out of its message.
// It still unwraps to err, so errors.Is keeps working (for a canceled
// context, say); callers only pass errors whose chain cannot hold the
// connection string itself.
func redact(err error, secrets []string) error {
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
