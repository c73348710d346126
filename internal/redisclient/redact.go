package redisclient

import (
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// passwordParam finds the password-bearing query parameters of our URL
// forms.
var passwordParam = regexp.MustCompile(`[?&](?:sentinel_)?password=([^&#]*)`)

// passwordsIn returns every spelling of a password in rawURL that an error
// message could echo: from the userinfo and from password parameters, as
// written and percent-decoded. It works on URLs that fail to parse, because
// those are exactly the ones whose parse errors quote them.
func passwordsIn(rawURL string) []string {
	var found []string
	if _, rest, ok := strings.Cut(rawURL, "://"); ok {
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
	for _, m := range passwordParam.FindAllStringSubmatch(rawURL, -1) {
		found = append(found, m[1])
	}
	for _, pw := range found {
		if decoded, err := url.QueryUnescape(pw); err == nil && decoded != pw {
			found = append(found, decoded)
		}
	}
	slices.Sort(found)
	return slices.Compact(found)
}

// redact returns err with every given secret blanked out of its message.
// It still unwraps to err, so errors.Is keeps working (for a canceled
// context, say); callers only pass errors whose chain cannot hold the URL
// itself.
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
