package auth

import (
	"strings"
	"unicode"

	"github.com/backplane/backplane/services/auth/dbsqlc"
)

// cleanDisplayName is a display name as the contract keeps it: control characters (CR,
// LF, tabs and the rest) become spaces, bidirectional formatting characters (such as
// the right-to-left override, which can make a name or a link read backwards) are
// removed, and runs of white space collapse to one space. Names come from anyone and
// end up in emails and other people's screens.
func cleanDisplayName(name string) string {
	var b strings.Builder
	b.Grow(len(name))
	for _, r := range strings.ToValidUTF8(name, "") {
		switch {
		case unicode.Is(unicode.Bidi_Control, r):
		case unicode.IsControl(r):
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// mailData is the data of a security email to u: data, plus the account's display name
// only when the address is verified. Until then anyone may have typed the address, and
// a name (a URL, a phishing line) must not ride on our mail to a stranger's inbox.
func mailData(u dbsqlc.User, data map[string]string) map[string]string {
	if u.EmailVerified {
		if name := cleanDisplayName(u.DisplayName); name != "" {
			data["display_name"] = name
		}
	}
	return data
}
