package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// newSecret returns 256 random bits, base64url-encoded, with a prefix. Refresh tokens,
// email tokens and API keys are all such secrets.
func newSecret(prefix string) string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// digest is how secrets are stored and looked up: a SHA-256 hash. A fast hash suffices
// because the secrets carry 256 bits of entropy; finding a row by its digest also means
// no secret is ever compared byte by byte in Go.
func digest(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// newSeed returns 256 random bits.
func newSeed() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}

// successorOf derives the refresh token that follows secret from secret and a random
// seed stored with it when it was spent. A retry that presents secret again within the
// grace window gets the same successor back, so a session never forks into two chains;
// without the secret, the seed alone derives nothing.
func successorOf(secret string, seed []byte) string {
	mac := hmac.New(sha256.New, seed)
	mac.Write([]byte(secret))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}
