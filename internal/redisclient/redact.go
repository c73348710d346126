package redisclient

import (
	"regexp"

	"github.com/backplane/backplane/internal/redact"
)

// passwordParam finds the password-bearing query parameters of our URL
// forms.
var passwordParam = regexp.MustCompile(`[?&](?:sentinel_)?password=([^&#]*)`)

// passwordsIn returns every spelling of a password in rawURL that an error
// message could echo: from the userinfo and from password parameters.
func passwordsIn(rawURL string) []string {
	found := redact.UserinfoPasswords(rawURL)
	for _, m := range passwordParam.FindAllStringSubmatch(rawURL, -1) {
		found = append(found, m[1])
	}
	return redact.Spellings(found)
}
