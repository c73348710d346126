package authn

import (
	"context"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
)

// GRPCJWKS fetches the key set from the auth service's GetJwks RPC.
type GRPCJWKS struct {
	Client authv1.AuthServiceClient
}

// FetchJWKS calls GetJwks.
func (g GRPCJWKS) FetchJWKS(ctx context.Context) ([]*authv1.Jwk, error) {
	resp, err := g.Client.GetJwks(ctx, &authv1.GetJwksRequest{})
	if err != nil {
		return nil, err
	}
	return resp.GetKeys(), nil
}

// IssuerJWKS serves the key set of a local Issuer, for the auth service itself.
type IssuerJWKS struct {
	Issuer *Issuer
}

// FetchJWKS returns the issuer's current keys.
func (i IssuerJWKS) FetchJWKS(context.Context) ([]*authv1.Jwk, error) {
	return i.Issuer.Keys().JWKS(), nil
}
