package backplane_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/sdk/go/backplane"
)

func TestInvalidRequestsNameTheirFields(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := newClient(t, target)
	signUp(t, c)

	_, err := c.Auth.UpdateCurrentUser(ctx, &authv1.UpdateCurrentUserRequest{User: &authv1.User{DisplayName: ""}})
	e := asError(t, err)
	require.Equal(t, codes.InvalidArgument, e.Code)
	require.Equal(t, []backplane.FieldViolation{{
		Field: "user.display_name", Description: "must be at least 1 characters", Reason: "string.min_len",
	}}, e.FieldViolations)
	require.NotEmpty(t, e.RequestID, "the edge's request id comes back with the error")
	require.Equal(t, codes.InvalidArgument, status.Code(err), "plain gRPC code still reads it")

	// A method the edge does not route (an INTERNAL one, called through Conn).
	err = c.Conn().Invoke(ctx, "/backplane.auth.v1.AuthService/LookupUser", &authv1.LookupUserRequest{}, &authv1.LookupUserResponse{})
	e = asError(t, err)
	require.Contains(t, []codes.Code{codes.Unimplemented, codes.PermissionDenied}, e.Code)
}
