package gateway_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
)

// TestARESTClientsOwnDeadlineIs504: a REST client that set its own deadline (the
// Grpc-Timeout header grpc-gateway reads) and saw it pass gets 504 Gateway Timeout, which
// says its own patience ran out; the edge's cap ending the call stays 503
// (TestACallTheEdgeCapsIsRetryable).
func TestARESTClientsOwnDeadlineIs504(t *testing.T) {
	t.Parallel()
	h := setupStuck(t, 10*time.Second)
	resp, body := h.do(t, http.MethodGet, "/v1/plans", "", http.Header{"Grpc-Timeout": {"200m"}})
	require.Equal(t, http.StatusGatewayTimeout, resp.StatusCode, body)
	require.EqualValues(t, codes.DeadlineExceeded, body["code"])
	require.Empty(t, resp.Header.Get("Retry-After"))
}
