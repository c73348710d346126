// Package auth is the identity service: accounts, sessions, access and refresh tokens, and
// API keys. It is the only service that sees passwords.
package auth

import (
	"context"

	"google.golang.org/grpc"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/mesh"
)

// Service describes the auth service to the process that runs it.
func Service() mesh.Service {
	return mesh.Service{
		Name:  "auth",
		Needs: []string{"notification"},
		Register: func(_ context.Context, deps mesh.Deps, reg grpc.ServiceRegistrar) (func(context.Context) error, error) {
			authv1.RegisterAuthServiceServer(reg, New(deps))
			return nil, nil
		},
	}
}
