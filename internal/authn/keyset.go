package authn

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
)

// Algorithm is the only JWS algorithm access tokens are signed or verified with.
const Algorithm = "EdDSA"

// SigningKey is an Ed25519 private key and its key id.
type SigningKey struct {
	// ID is the key id written in a token's kid header.
	ID string
	// Private signs tokens.
	Private ed25519.PrivateKey
}

// KeyID derives a key id from a public key (base64url of the first 16 bytes of its
// SHA-256), so ids are stable across replicas without coordination.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// KeySet is the keys of one issuer: the current signing key and every public key that may
// still have signed a live token. Rotation keeps the previous keys here until the tokens
// they signed have expired. A KeySet is immutable; rotation builds a new one.
type KeySet struct {
	signing SigningKey
	public  map[string]ed25519.PublicKey
}

// NewKeySet builds a key set that signs with current and verifies with current and
// previous.
func NewKeySet(current SigningKey, previous ...ed25519.PublicKey) (*KeySet, error) {
	if len(current.Private) != ed25519.PrivateKeySize || current.ID == "" {
		return nil, errors.New("authn: the signing key needs an id and an Ed25519 private key")
	}
	ks := &KeySet{signing: current, public: map[string]ed25519.PublicKey{}}
	pub, ok := current.Private.Public().(ed25519.PublicKey)
	if !ok {
		return nil, errors.New("authn: the signing key's public half is not an Ed25519 key")
	}
	ks.public[current.ID] = pub
	for _, pub := range previous {
		if len(pub) != ed25519.PublicKeySize {
			return nil, errors.New("authn: a verifying key is not an Ed25519 public key")
		}
		ks.public[KeyID(pub)] = pub
	}
	return ks, nil
}

// Signing returns the key that signs new tokens.
func (ks *KeySet) Signing() SigningKey { return ks.signing }

// PublicKeys returns the verifying keys by key id. The map must not be changed.
func (ks *KeySet) PublicKeys() map[string]ed25519.PublicKey { return ks.public }

// JWKS exports every verifying key as a JSON Web Key (RFC 8037 OKP form).
func (ks *KeySet) JWKS() []*authv1.Jwk {
	keys := make([]*authv1.Jwk, 0, len(ks.public))
	// The signing key first, so a client that reads only one key reads the right one.
	keys = append(keys, jwkOf(ks.signing.ID, ks.public[ks.signing.ID]))
	for kid, pub := range ks.public {
		if kid != ks.signing.ID {
			keys = append(keys, jwkOf(kid, pub))
		}
	}
	return keys
}

func jwkOf(kid string, pub ed25519.PublicKey) *authv1.Jwk {
	return &authv1.Jwk{
		Kty: "OKP",
		Kid: kid,
		Use: "sig",
		Alg: Algorithm,
		Crv: "Ed25519",
		X:   base64.RawURLEncoding.EncodeToString(pub),
	}
}

// PublicKeysFromJWKS reads the Ed25519 signing keys of a JWKS. Keys of any other type,
// algorithm or use are skipped, so a key set cannot smuggle in a key that would verify
// under a weaker algorithm.
func PublicKeysFromJWKS(jwks []*authv1.Jwk) (map[string]ed25519.PublicKey, error) {
	keys := make(map[string]ed25519.PublicKey, len(jwks))
	for _, k := range jwks {
		if k.GetKty() != "OKP" || k.GetCrv() != "Ed25519" || k.GetAlg() != Algorithm || (k.GetUse() != "" && k.GetUse() != "sig") {
			continue
		}
		x, err := base64.RawURLEncoding.DecodeString(k.GetX())
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("authn: JWK %q has a malformed Ed25519 key", k.GetKid())
		}
		if k.GetKid() == "" {
			return nil, errors.New("authn: a JWK has no key id")
		}
		keys[k.GetKid()] = ed25519.PublicKey(x)
	}
	return keys, nil
}
