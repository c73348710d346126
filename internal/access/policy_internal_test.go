package access

import (
	"testing"

	"github.com/stretchr/testify/require"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
)

// TestLookupKeepsOnlyLinkedMethods: a method linked into the binary has its policy kept
// once looked up, and answers the same from it; a name a client made up is not kept, so
// such names never grow the memory.
func TestLookupKeepsOnlyLinkedMethods(t *testing.T) {
	t.Parallel()
	first := Lookup(authv1.AuthService_LookupUser_FullMethodName)
	require.NotNil(t, first)
	require.Same(t, first, Lookup(authv1.AuthService_LookupUser_FullMethodName))
	_, kept := policies.Load(authv1.AuthService_LookupUser_FullMethodName)
	require.True(t, kept)

	require.Nil(t, Lookup("/backplane.auth.v1.AuthService/NoSuchMethod"))
	require.Nil(t, Lookup("/backplane.auth.v1.AuthService/NoSuchMethod"))
	_, kept = policies.Load("/backplane.auth.v1.AuthService/NoSuchMethod")
	require.False(t, kept)
}
