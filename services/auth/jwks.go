package auth

import (
	"context"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
)

// GetJwks returns every public key that may have signed a live access token.
func (s *Server) GetJwks(context.Context, *authv1.GetJwksRequest) (*authv1.GetJwksResponse, error) {
	return &authv1.GetJwksResponse{Keys: s.issuer.Keys().JWKS()}, nil
}
