package catalog_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	accessv1 "github.com/backplane/backplane/gen/backplane/access/v1"
	"github.com/backplane/backplane/internal/access"
	"github.com/backplane/backplane/internal/catalog"
)

// Every RPC must declare who may call it; an RPC without a policy would be denied
// everywhere at best, and at worst be the one someone forgets to protect.
func TestEveryRPCDeclaresAnAccessPolicy(t *testing.T) {
	t.Parallel()
	methods := 0
	for _, e := range catalog.Entries() {
		require.NotNil(t, e.Service, "entry for %s has no descriptor", e.Owner)
		ms := e.Service.Methods()
		for i := range ms.Len() {
			md := ms.Get(i)
			methods++
			p := access.PolicyOf(md)
			require.NotNil(t, p, "%s has no (backplane.access.v1.policy) with an audience", md.FullName())
		}
	}
	require.Greater(t, methods, 20)
}

// Edge RPCs carry an HTTP mapping; INTERNAL ones carry none, so no REST route can exist.
func TestHTTPMappingFollowsAudience(t *testing.T) {
	t.Parallel()
	for _, e := range catalog.Entries() {
		ms := e.Service.Methods()
		for i := range ms.Len() {
			md := ms.Get(i)
			hasHTTP := hasHTTPRule(md)
			if access.PolicyOf(md).GetAudience() == accessv1.Audience_AUDIENCE_INTERNAL {
				require.False(t, hasHTTP, "%s is INTERNAL but has a google.api.http mapping", md.FullName())
			} else {
				require.True(t, hasHTTP, "%s is reachable at the edge but has no google.api.http mapping", md.FullName())
			}
		}
	}
}

func hasHTTPRule(md protoreflect.MethodDescriptor) bool {
	return proto.HasExtension(md.Options(), annotations.E_Http)
}

func TestOwners(t *testing.T) {
	t.Parallel()
	require.ElementsMatch(t, []string{"auth", "subscription", "asset", "usage", "notification"}, catalog.Owners())
}
