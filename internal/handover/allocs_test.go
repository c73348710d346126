//go:build !race

// The race detector allocates on its own, so allocation counts are pinned without it.

package handover

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// A door call sets headers three times (request id, rate limit, the service's own) and
// has them delivered: the transport adds them in place (9 allocations here), which
// this pins well under what joining them on every set and copying them on delivery
// cost (27).
func TestTransportAddsHeadersInPlace(t *testing.T) { //nolint:paralleltest // AllocsPerRun refuses a parallel test
	id := metadata.MD{"x-request-id": {"r"}}
	limits := metadata.MD{"ratelimit-limit": {"1"}, "ratelimit-remaining": {"0"}, "ratelimit-reset": {"1"}, "ratelimit-policy": {"1;w=1"}}
	service := metadata.MD{"x-request-id": {"r"}}
	var header, trailer metadata.MD
	opts := []grpc.CallOption{grpc.Header(&header), grpc.Trailer(&trailer)}
	allocs := testing.AllocsPerRun(100, func() {
		tr := NewTransport("/svc/Method")
		_ = tr.SetHeader(id)
		_ = tr.SetHeader(limits)
		_ = tr.SetHeader(service)
		tr.Deliver(opts)
	})
	require.LessOrEqual(t, allocs, 14.0)
	require.Equal(t, []string{"r", "r"}, header.Get("x-request-id"))
}
