package gateway_test

import (
	"context"
	"net"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/backplane/backplane/gateway"
	subscriptionv1 "github.com/backplane/backplane/gen/backplane/subscription/v1"
	"github.com/backplane/backplane/internal/grpctest"
	"github.com/backplane/backplane/services"
)

// TestAnUnreachableServiceIsRetryable: both doors answer a service that is down with
// UNAVAILABLE and when to retry — 503 with Retry-After, or RetryInfo.
func TestAnUnreachableServiceIsRetryable(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := lis.Addr().String()
	require.NoError(t, lis.Close()) // nothing listens there now
	down := grpctest.Dial(t, addr)
	s := setup(t, func(c *gateway.Config) {
		c.Backends = map[string]grpc.ClientConnInterface{}
		for _, name := range services.Names() {
			c.Backends[name] = down
		}
	})

	resp, body := s.do(t, http.MethodGet, "/v1/plans", "", nil)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Equal(t, "1", resp.Header.Get("Retry-After"))
	require.EqualValues(t, codes.Unavailable, body["code"])

	_, err = subscriptionv1.NewSubscriptionServiceClient(s.grpc).ListPlans(context.Background(), &subscriptionv1.ListPlansRequest{})
	st := status.Convert(err)
	require.Equal(t, codes.Unavailable, st.Code())
	require.NotEmpty(t, st.Details())
	_, ok := st.Details()[0].(*errdetails.RetryInfo)
	require.True(t, ok, "RetryInfo says when to come back")
}
