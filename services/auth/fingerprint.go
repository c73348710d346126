package auth

import (
	"context"
	"crypto/sha256"
	"net/netip"
	"strings"
	"time"

	"github.com/google/uuid"
	useragent "github.com/medama-io/go-useragent"

	"github.com/backplane/backplane/services/auth/dbsqlc"
)

// A sign-in's fingerprint is what the "new sign-in" email is about: the kind of client
// (browser, operating system and device, without versions, which change with every
// update) and the network it came from (the /24 of an IPv4 address, the /48 of an IPv6
// one: a home or office, not one DHCP lease). It needs no cookie, so it also recognises
// a client that never kept its device token, as the big providers do.

// How long, and how many, fingerprints an account keeps: as long as a trusted device.
const (
	fingerprintTTL  = trustedDeviceTTL
	maxFingerprints = 50
)

// uaParser is built once: its trie is read-only after construction.
var uaParser = useragent.NewParser()

// userAgentFamily is the client's kind, without versions. A client the parser does
// not know (curl, an SDK) is named by its product token.
func userAgentFamily(ua string) string {
	a := uaParser.Parse(ua)
	if b := string(a.Browser()); b != "" {
		return b + "/" + string(a.OS()) + "/" + string(a.Device())
	}
	product, _, _ := strings.Cut(strings.TrimSpace(ua), "/")
	product, _, _ = strings.Cut(product, " ")
	return strings.ToLower(product)
}

// network is the address's network: its /24 for IPv4, its /48 for IPv6, or the text as
// given when it is not an address.
func network(ip string) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	addr = addr.Unmap()
	bits := 48
	if addr.Is4() {
		bits = 24
	}
	p, err := addr.Prefix(bits)
	if err != nil {
		return ip
	}
	return p.String()
}

// fingerprint hashes a client's user-agent family and network: only the hash is
// stored.
func fingerprint(c clientInfo) []byte {
	sum := sha256.Sum256([]byte(userAgentFamily(c.userAgent) + "\x00" + network(c.ip)))
	return sum[:]
}

// seeFingerprint records a sign-in from c and reports whether the account had not
// signed in from its fingerprint within fingerprintTTL.
func (s *store) seeFingerprint(ctx context.Context, userID uuid.UUID, c clientInfo, now time.Time) (bool, error) {
	if err := none(s.q.SignInFingerprintPrune(ctx, dbsqlc.SignInFingerprintPruneParams{
		UserID: userID, SeenBefore: now.Add(-fingerprintTTL), Keep: maxFingerprints,
	})); err != nil {
		return false, err
	}
	return one(s.q.SignInFingerprintSee(ctx, dbsqlc.SignInFingerprintSeeParams{
		UserID: userID, Fingerprint: fingerprint(c), LastSeenTime: now,
	}))
}
