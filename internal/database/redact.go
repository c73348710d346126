package database

import (
	"regexp"
	"strings"

	"github.com/backplane/backplane/internal/redact"
)

// keywordPassword finds password=... in a keyword/value connection string,
// quoted or not.
var keywordPassword = regexp.MustCompile(`password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)`)

// passwordsIn returns every spelling of the password in connString that an
// error message could echo, from the URL form or the keyword/value form.
func passwordsIn(connString string) []string {
	found := redact.UserinfoPasswords(connString)
	for _, m := range keywordPassword.FindAllStringSubmatch(connString, -1) {
		found = append(found, strings.Trim(m[1], "'"))
	}
	return redact.Spellings(found)
}
