package validation_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/internal/validation"
)

func TestCheckReportsEveryViolation(t *testing.T) {
	t.Parallel()
	v, err := validation.New()
	require.NoError(t, err)

	err = v.Check(&authv1.SignUpRequest{Email: "not-an-email", Password: "short", DisplayName: ""})
	st := fault.Status(err)
	require.Equal(t, codes.InvalidArgument, st.Code())
	require.Len(t, st.Details(), 1)
	br, ok := st.Details()[0].(*errdetails.BadRequest)
	require.True(t, ok)
	fields := map[string]string{}
	for _, fv := range br.GetFieldViolations() {
		fields[fv.GetField()] = fv.GetDescription()
	}
	require.Contains(t, fields, "email")
	require.Contains(t, fields, "password")
	require.Contains(t, fields, "display_name")
	require.NotEmpty(t, fields["password"])
}

func TestCheckAcceptsValid(t *testing.T) {
	t.Parallel()
	v, err := validation.New()
	require.NoError(t, err)
	require.NoError(t, v.Check(&authv1.SignUpRequest{Email: "ada@example.com", Password: "correct horse", DisplayName: "Ada"}))
}
