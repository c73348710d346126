package notification

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
)

// authAddressBook resolves user recipients through the auth service, which owns
// accounts and their addresses. LookupUser requires a service credential: conn carries
// one, or opts do.
func authAddressBook(conn grpc.ClientConnInterface, opts ...grpc.CallOption) func(context.Context, uuid.UUID) (string, error) {
	client := authv1.NewAuthServiceClient(conn)
	return func(ctx context.Context, userID uuid.UUID) (string, error) {
		resp, err := client.LookupUser(ctx, &authv1.LookupUserRequest{Key: &authv1.LookupUserRequest_UserId{UserId: userID.String()}}, opts...)
		switch status.Code(err) {
		case codes.OK:
		case codes.NotFound, codes.InvalidArgument:
			return "", &sendError{permanent: true, msg: "the recipient has no account", reason: "the recipient has no account"}
		default:
			return "", retryableError(fmt.Errorf("look up recipient: %w", err))
		}
		if resp.GetUser().GetEmail() == "" {
			return "", &sendError{permanent: true, msg: "the recipient has no email address", reason: "the recipient has no email address"}
		}
		return resp.GetUser().GetEmail(), nil
	}
}

// noAddressBook is used when the process has no connection to the auth service: emails
// to users fail with a reason an operator can act on.
func noAddressBook(context.Context, uuid.UUID) (string, error) {
	return "", &sendError{permanent: true, msg: "no auth service to look up the recipient's address", reason: "the recipient's address could not be found"}
}
