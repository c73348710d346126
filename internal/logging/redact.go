package logging

import (
	"log/slog"
	"strings"
)

// redacted replaces the value of every attribute that looks like a secret.
const redacted = "[REDACTED]"

// redactAttr is the slog.HandlerOptions.ReplaceAttr of every handler New builds. slog
// calls it for each leaf attribute after resolving LogValuers, with the names of the
// groups that enclose it; a secret-looking group name therefore redacts everything
// inside it, whether the group came from slog.Group or from Logger.WithGroup.
func redactAttr(groups []string, a slog.Attr) slog.Attr {
	if isSecretKey(a.Key) {
		return slog.String(a.Key, redacted)
	}
	for _, g := range groups {
		if isSecretKey(g) {
			return slog.String(a.Key, redacted)
		}
	}
	return a
}

// isSecretKey reports whether key looks like the name of a secret.
func isSecretKey(key string) bool {
	var buf [64]byte
	compact := buf[:0]
	for i := range len(key) {
		c := key[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			compact = append(compact, c)
		case c >= 'A' && c <= 'Z':
			compact = append(compact, c+('a'-'A'))
		}
	}
	s := string(compact)
	// Keys are matched lower-cased and stripped of everything but letters and digits,
	// so that "access_token", "X-Api-Key", "Set-Cookie", "Stripe-Signature" and
	// "privateKey" are caught without listing every spelling. Matching is by
	// substring: a false positive costs a debugging detail, a false negative leaks a
	// credential into every log store and backup.
	for _, fragment := range [...]string{
		"password",
		"passwd",
		"secret",
		"token", // also access_token, refresh_token, id_token, csrf_token
		"authorization",
		"apikey", // also api_key, x-api-key
		"cookie", // also set-cookie
		"stripesignature",
		"privatekey",
	} {
		if strings.Contains(s, fragment) {
			return true
		}
	}
	return false
}
