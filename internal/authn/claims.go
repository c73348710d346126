package authn

import "github.com/golang-jwt/jwt/v5"

// Claims are the claims of an access token.
type Claims struct {
	jwt.RegisteredClaims
	// SessionID is the session the token belongs to; revoking the session revokes it.
	SessionID string `json:"sid"`
	// Roles are the user's roles when the token was issued.
	Roles []string `json:"roles,omitempty"`
}
