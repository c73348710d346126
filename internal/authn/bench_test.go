package authn

import (
	"context"
	"crypto/ed25519"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// BenchmarkVerifyToken sets our verification beside golang-jwt's own verification of the
// same token in the same run: ParseToken adds claim rules and kid lookup; Verifier adds
// the cached key set and the Redis session check.
func BenchmarkVerifyToken(b *testing.B) {
	bundle := setup(b)
	token, _ := bundle.login(b, RoleUser)
	pub := bundle.keys.Signing().Private.Public().(ed25519.PublicKey)
	keys := bundle.keys.PublicKeys()
	rules := TokenRules{Issuer: testIssuer, Audience: testAudience}

	b.Run("golang-jwt", func(b *testing.B) {
		for b.Loop() {
			if _, err := jwt.Parse(token, func(*jwt.Token) (any, error) { return pub, nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ParseToken", func(b *testing.B) {
		for b.Loop() {
			if _, err := ParseToken(token, keys, rules); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Verifier+Redis", func(b *testing.B) {
		ctx := context.Background()
		for b.Loop() {
			if _, err := bundle.verifier.Verify(ctx, token); err != nil {
				b.Fatal(err)
			}
		}
	})
}
