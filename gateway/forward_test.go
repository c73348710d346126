package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/metadata"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
)

// ListSessions answers one session per metadata key that reached the service, its id
// the key and its user agent the value, so tests can see exactly what was forwarded.
func (b *backend) ListSessions(ctx context.Context, _ *authv1.ListSessionsRequest) (*authv1.ListSessionsResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	var out authv1.ListSessionsResponse
	for k, v := range md {
		out.Sessions = append(out.Sessions, &authv1.Session{Id: k, UserAgent: strings.Join(v, ",")})
	}
	return &out, nil
}

func keysOf(sessions []*authv1.Session) []string {
	var keys []string
	for _, s := range sessions {
		keys = append(keys, s.GetId())
	}
	return keys
}

// TestOnlyWhatServicesReadIsForwarded: a client's own metadata stays at the edge, on
// both doors.
func TestOnlyWhatServicesReadIsForwarded(t *testing.T) {
	t.Parallel()
	s := setup(t)

	ctx := metadata.AppendToOutgoingContext(context.Background(),
		"x-padding", strings.Repeat("p", 1000), "x-request-id", "req-forward-1", "user-agent-extra", "x")
	resp, err := authv1.NewAuthServiceClient(s.grpc).ListSessions(ctx, &authv1.ListSessionsRequest{})
	require.NoError(t, err)
	keys := keysOf(resp.GetSessions())
	require.Contains(t, keys, "x-request-id")
	require.Contains(t, keys, "x-forwarded-user-agent")
	require.NotContains(t, keys, "x-padding")
	require.NotContains(t, keys, "user-agent-extra")

	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.rest.URL+"/v1/auth/sessions", nil)
	require.NoError(t, err)
	req.Header.Set("Grpc-Metadata-X-Padding", strings.Repeat("p", 1000))
	req.Header.Set("X-Custom", "1")
	req.Header.Set("User-Agent", "curl/8")
	_, body := send(t, req)
	require.Contains(t, string(body), "x-forwarded-user-agent")
	require.Contains(t, string(body), "curl/8", "the REST client's user agent reaches the sessions list")
	require.NotContains(t, string(body), "x-padding")
	require.NotContains(t, string(body), "x-custom")
	require.NotContains(t, string(body), `"grpcgateway-`, "grpc-gateway's copies of HTTP headers stay at the edge")
}
