package notification

import (
	"strings"
)

// links builds the URLs emails point at, under BACKPLANE_PUBLIC_URL.
type links struct {
	publicURL string
	signer    tokenSigner
}

// unsubscribe is the one-click unsubscribe URL for a claim: the REST binding
// POST /v1/unsubscribe/{token} of the Unsubscribe RPC, as RFC 8058 wants.
func (l links) unsubscribe(c unsubscribeClaim) string {
	return strings.TrimRight(l.publicURL, "/") + "/v1/unsubscribe/" + l.signer.sign(c)
}
