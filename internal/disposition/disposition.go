// Package disposition decides how a browser is told to treat a served file: inline, or
// as an attachment when its type is one a browser would run as a page or script, and
// under which name. The REST door sets it on the files it streams and the asset service
// forces it onto a bucket's response when it redirects a download there, so that both
// ways of serving a file say the same.
package disposition

import (
	"fmt"
	"mime"
	"net/url"
	"strings"
)

// Active reports whether a browser would run content of this type if it showed it:
// such files are only ever attachments. A type that does not parse counts as active.
func Active(contentType string) bool {
	t, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return true
	}
	switch {
	case t == "text/html", t == "application/xhtml+xml", t == "image/svg+xml", t == "text/xml",
		t == "application/xml", t == "text/javascript", t == "application/javascript",
		t == "application/pdf", strings.HasSuffix(t, "+xml"):
		return true
	}
	return false
}

// Of is the Content-Disposition of a file named filename of contentType: inline, or
// attachment for active content, naming the file safely: an ASCII fallback with quotes,
// backslashes and control characters replaced, and the UTF-8 name encoded (RFC 6266,
// RFC 8187).
func Of(filename, contentType string) string {
	kind := "inline"
	if Active(contentType) {
		kind = "attachment"
	}
	if filename == "" {
		return kind
	}
	fallback := strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' || r == '%' || r == ';' {
			return '_'
		}
		return r
	}, filename)
	return fmt.Sprintf(`%s; filename="%s"; filename*=UTF-8''%s`, kind, fallback, url.PathEscape(filename))
}
