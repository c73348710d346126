package gateway_test

import (
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/backplane/backplane/gateway"
	subscriptionv1 "github.com/backplane/backplane/gen/backplane/subscription/v1"
	"github.com/backplane/backplane/internal/grpctest"
	"github.com/backplane/backplane/services"
)

// TestARESTClientsOwnDeadlineIs504: a REST client that set its own deadline (the
// Grpc-Timeout header grpc-gateway reads) and saw it pass gets 504 Gateway Timeout, which
// says its own patience ran out; the edge's cap ending the call stays 503
// (TestACallTheEdgeCapsIsRetryable).
func TestARESTClientsOwnDeadlineIs504(t *testing.T) {
	t.Parallel()
	srv := grpc.NewServer()
	subscriptionv1.RegisterSubscriptionServiceServer(srv, stuckPlans{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	stuck := grpctest.Dial(t, lis.Addr().String())
	h := setup(t, func(c *gateway.Config) {
		c.MaxCallTimeout = 10 * time.Second
		c.Backends = map[string]grpc.ClientConnInterface{}
		for _, name := range services.Names() {
			c.Backends[name] = stuck
		}
	})
	resp, body := h.do(t, http.MethodGet, "/v1/plans", "", http.Header{"Grpc-Timeout": {"200m"}})
	require.Equal(t, http.StatusGatewayTimeout, resp.StatusCode, body)
	require.EqualValues(t, codes.DeadlineExceeded, body["code"])
	require.Empty(t, resp.Header.Get("Retry-After"))
}
