//go:build !race

// The race detector allocates on its own, so allocation counts are pinned without it.

package grpcclient

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/metadata"

	"github.com/backplane/backplane/internal/requestid"
)

// A call that already carries its request id, among the rest of what the edge forwards,
// costs outgoing one allocation (the id's values, copied out): the id is looked up, not
// found in a copy of all the metadata, which cost one allocation per key and the map's
// (7 here).
func TestOutgoingLooksTheRequestIDUp(t *testing.T) { //nolint:paralleltest // AllocsPerRun refuses a parallel test
	ctx := requestid.NewContext(context.Background(), "r-1")
	ctx = metadata.NewOutgoingContext(ctx, metadata.MD{
		requestid.MetadataKey:    {"r-1"},
		"authorization":          {"Bearer t"},
		"x-forwarded-user-agent": {"curl/8"},
		"x-forwarded-for":        {"192.0.2.1"},
		"traceparent":            {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
	})
	var ids int
	allocs := testing.AllocsPerRun(100, func() {
		ids = len(metadata.ValueFromOutgoingContext(outgoing(ctx), requestid.MetadataKey))
	})
	require.LessOrEqual(t, allocs, 2.0, "the id's values, copied out here and in outgoing")
	require.Equal(t, 1, ids, "the id is not added twice")
}
