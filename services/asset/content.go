package asset

import (
	"mime"
	"net/http"
	"strings"
)

// typePolicy decides which media types files may be declared with, and whether a file's
// first bytes agree with its declared type.
type typePolicy struct {
	exact    map[string]bool
	families map[string]bool // "image" for "image/*"
}

func newTypePolicy(allowed []string) *typePolicy {
	p := &typePolicy{exact: map[string]bool{}, families: map[string]bool{}}
	for _, t := range allowed {
		t = strings.ToLower(strings.TrimSpace(t))
		if family, ok := strings.CutSuffix(t, "/*"); ok {
			p.families[family] = true
			continue
		}
		p.exact[t] = true
	}
	return p
}

// mediaType is the lower-cased type/subtype of a Content-Type, without parameters.
func mediaType(contentType string) string {
	t, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		t, _, _ = strings.Cut(contentType, ";")
	}
	return strings.ToLower(strings.TrimSpace(t))
}

// allows reports whether files may be declared with contentType.
func (p *typePolicy) allows(contentType string) bool {
	t := mediaType(contentType)
	if p.exact[t] {
		return true
	}
	family, _, _ := strings.Cut(t, "/")
	return p.families[family]
}

// sniffLen is how many leading bytes the sniffer reads (http.DetectContentType's).
const sniffLen = 512

// textual are declared types whose bytes sniff as plain text or XML.
var textual = map[string]bool{
	"application/json": true, "application/xml": true, "image/svg+xml": true,
	"application/javascript": true, "application/x-ndjson": true, "application/yaml": true,
}

// agrees reports whether a file whose first bytes are head may carry the declared
// type. The sniffer recognises a few dozen signatures (images, PDF, archives, HTML,
// media); a file that matches one must be declared as that type, so that HTML cannot
// pass for a picture nor a picture for HTML. Bytes with no signature pass as any type,
// except that text may not be declared as a type that has one.
func agrees(declared string, head []byte) bool {
	d := mediaType(declared)
	sniffed := mediaType(http.DetectContentType(head))
	switch {
	case sniffed == d:
		return true
	case sniffed == "application/octet-stream":
		return true
	case sniffed == "text/plain", sniffed == "text/xml":
		return strings.HasPrefix(d, "text/") && d != "text/html" || textual[d] || d == "application/octet-stream"
	case sniffed == "text/html":
		return false
	case d == "application/octet-stream":
		// Declared as opaque bytes: any recognised binary format may be stored so, and is
		// served so; only HTML is refused, above.
		return true
	default:
		return false
	}
}
