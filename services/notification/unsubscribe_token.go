package notification

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"

	"github.com/google/uuid"
)

// errBadToken means an unsubscribe token was not issued by us or was altered.
var errBadToken = errors.New("bad unsubscribe token")

// unsubscribeClaim is what an unsubscribe token names: one category's email for one
// recipient, a user or a bare address.
type unsubscribeClaim struct {
	Category string     `json:"c"`
	UserID   *uuid.UUID `json:"u,omitempty"`
	Email    string     `json:"e,omitempty"`
}

// tokenSigner signs and checks unsubscribe tokens with HMAC-SHA256. A token is
// base64url(claim) "." base64url(mac): URL-safe as it stands, and deterministic, so the
// link in the body and the one in the List-Unsubscribe header are the same.
//
// Tokens do not expire: RFC 8058 one-click links must keep working for as long as the
// email sits in an inbox, and all a token can do is switch email off.
type tokenSigner struct {
	key []byte
}

func (s tokenSigner) sign(c unsubscribeClaim) string {
	payload, _ := json.Marshal(c) // a struct of strings always marshals
	p := base64.RawURLEncoding.EncodeToString(payload)
	return p + "." + base64.RawURLEncoding.EncodeToString(s.mac(p))
}

func (s tokenSigner) mac(payload string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte("backplane-unsubscribe-v1\x00")) // binds the key to this one use
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// verify returns the claim of a token this signer issued, or errBadToken.
func (s tokenSigner) verify(token string) (unsubscribeClaim, error) {
	p, sig, ok := strings.Cut(token, ".")
	if !ok {
		return unsubscribeClaim{}, errBadToken
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, s.mac(p)) {
		return unsubscribeClaim{}, errBadToken
	}
	payload, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return unsubscribeClaim{}, errBadToken
	}
	var c unsubscribeClaim
	if err := json.Unmarshal(payload, &c); err != nil || (c.UserID == nil) == (c.Email == "") {
		return unsubscribeClaim{}, errBadToken
	}
	return c, nil
}
