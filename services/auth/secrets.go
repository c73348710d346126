package auth

import (
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
