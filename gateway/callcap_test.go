package gateway_test

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/backplane/backplane/gateway"
	subscriptionv1 "github.com/backplane/backplane/gen/backplane/subscription/v1"
	"github.com/backplane/backplane/internal/grpctest"
	"github.com/backplane/backplane/services"
)

// stuckPlans never answers until its caller gives up, as a service whose store is
// blackholed does.
type stuckPlans struct {
	subscriptionv1.UnimplementedSubscriptionServiceServer
}

func (stuckPlans) ListPlans(ctx context.Context, _ *subscriptionv1.ListPlansRequest) (*subscriptionv1.ListPlansResponse, error) {
	<-ctx.Done()
	return nil, status.FromContextError(ctx.Err()).Err()
}

// setupStuck is an edge whose every service is stuckPlans, over the network, with
// maxCall as the edge's cap on a call.
func setupStuck(t *testing.T, maxCall time.Duration) *harness {
	t.Helper()
	srv := grpc.NewServer()
	subscriptionv1.RegisterSubscriptionServiceServer(srv, stuckPlans{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	stuck := grpctest.Dial(t, lis.Addr().String())
	return setup(t, func(c *gateway.Config) {
		c.MaxCallTimeout = maxCall
		c.Backends = map[string]grpc.ClientConnInterface{}
		for _, name := range services.Names() {
			c.Backends[name] = stuck
		}
	})
}

// TestACallTheEdgeCapsIsRetryable: when the edge's own cap ends a call the service did
// not answer, both doors answer UNAVAILABLE (503 with Retry-After) in time; when the
// client's shorter deadline ends it, DEADLINE_EXCEEDED stays the answer.
func TestACallTheEdgeCapsIsRetryable(t *testing.T) {
	t.Parallel()
	const limit = 300 * time.Millisecond
	h := setupStuck(t, limit)

	t.Run("REST", func(t *testing.T) {
		started := time.Now()
		resp, body := h.do(t, http.MethodGet, "/v1/plans", "", nil)
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, body)
		require.Equal(t, "1", resp.Header.Get("Retry-After"))
		require.EqualValues(t, codes.Unavailable, body["code"])
		require.Less(t, time.Since(started), limit+2*time.Second)
	})
	t.Run("gRPC", func(t *testing.T) {
		_, err := subscriptionv1.NewSubscriptionServiceClient(h.grpc).ListPlans(t.Context(), &subscriptionv1.ListPlansRequest{})
		require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	})
	t.Run("the client's own shorter deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), limit/3)
		defer cancel()
		_, err := subscriptionv1.NewSubscriptionServiceClient(h.grpc).ListPlans(ctx, &subscriptionv1.ListPlansRequest{})
		require.Equal(t, codes.DeadlineExceeded, status.Code(err), "%v", err)
	})
}
