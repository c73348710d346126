package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/backplane/backplane/gateway"
	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/clientip"
	"github.com/backplane/backplane/internal/scenario"
)

func TestRESTValidatesAtTheEdge(t *testing.T) {
	t.Parallel()
	h := setup(t)
	scenario.Step(t, "an invalid request never reaches the service", func(t *testing.T) {
		resp, body := h.do(t, http.MethodPost, "/v1/auth/signup", `{"email":"nope","password":"x","displayName":""}`, nil)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		require.EqualValues(t, codes.InvalidArgument, body["code"])
		details := body["details"].([]any)
		require.Len(t, details, 1)
		violations := details[0].(map[string]any)["fieldViolations"].([]any)
		fields := map[string]bool{}
		for _, v := range violations {
			fields[v.(map[string]any)["field"].(string)] = true
		}
		require.Equal(t, map[string]bool{"email": true, "password": true, "displayName": true}, fields,
			"fields are named as a JSON client writes them")
		require.Contains(t, body["message"], "displayName: ", "and so does the message")
		require.NotContains(t, body["message"], "display_name")
		require.Zero(t, h.backend.signups.Load(), "an invalid request never reaches the service")
	})
	scenario.Step(t, "a valid one does", func(t *testing.T) {
		resp, _ := h.do(t, http.MethodPost, "/v1/auth/signup", `{"email":"ada@example.com","password":"correct horse","displayName":"Ada"}`, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.EqualValues(t, 1, h.backend.signups.Load())
	})
}

func TestRESTStreamsServerStreams(t *testing.T) {
	t.Parallel()
	h := setup(t)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, h.rest.URL+"/v1/notifications:stream", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { require.NoError(t, resp.Body.Close()) }()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "application/x-ndjson", resp.Header.Get("Content-Type"), "as the OpenAPI document says")
	var counts []float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var msg map[string]map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &msg), sc.Text())
		counts = append(counts, msg["result"]["unreadCount"].(float64))
	}
	require.Equal(t, []float64{1, 2, 3}, counts)
}

func TestRESTLeavesOutUnsetTimestamps(t *testing.T) {
	t.Parallel()
	h := setup(t)
	_, body := h.do(t, http.MethodGet, "/v1/users/me", "", nil)
	user := body["user"].(map[string]any)
	require.NotContains(t, user, "createTime", "unset, so absent: the document's schema is a date-time string, never null")
	require.Contains(t, user, "emailVerified", "zero values are still written")
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	h := setup(t, func(c *gateway.Config) { c.MaxBodyBytes = 64 })
	big := `{"email":"ada@example.com","password":"` + strings.Repeat("x", 100) + `","displayName":"Ada"}`

	t.Run("with a Content-Length", func(t *testing.T) {
		resp, body := h.do(t, http.MethodPost, "/v1/auth/signup", big, nil)
		require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
		require.EqualValues(t, codes.ResourceExhausted, body["code"])
	})
	// Without a Content-Length the body is cut off as it streams in.
	t.Run("streamed, without one", func(t *testing.T) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, h.rest.URL+"/v1/auth/signup", io.MultiReader(strings.NewReader(big)))
		require.NoError(t, err)
		req.ContentLength = -1
		r2, _ := send(t, req)
		require.Equal(t, http.StatusRequestEntityTooLarge, r2.StatusCode)
	})
	require.Zero(t, h.backend.signups.Load())
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	t.Run("with TLS", func(t *testing.T) {
		h := setup(t, func(c *gateway.Config) { c.TLS = true })
		resp, _ := h.do(t, http.MethodGet, "/v1/users/me", "", nil)
		require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
		require.Contains(t, resp.Header.Get("Strict-Transport-Security"), "max-age=")
		require.Empty(t, resp.Header.Get("Server"))
	})
	t.Run("without", func(t *testing.T) {
		plain := setup(t)
		resp, _ := plain.do(t, http.MethodGet, "/v1/users/me", "", nil)
		require.Empty(t, resp.Header.Get("Strict-Transport-Security"), "no HSTS without TLS")
	})
}

func TestCORS(t *testing.T) {
	t.Parallel()
	h := setup(t, func(c *gateway.Config) {
		c.CORS = gateway.CORSConfig{AllowedOrigins: []string{"https://app.example.com"}, MaxAge: 10 * time.Minute}
	})
	preflight := func(t *testing.T, origin string) reply {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodOptions, h.rest.URL+"/v1/auth/login", nil)
		require.NoError(t, err)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", http.MethodPost)
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
		resp, _ := send(t, req)
		return resp
	}
	t.Run("an allowed origin's preflight", func(t *testing.T) {
		resp := preflight(t, "https://app.example.com")
		require.Equal(t, http.StatusNoContent, resp.StatusCode)
		require.Equal(t, "https://app.example.com", resp.Header.Get("Access-Control-Allow-Origin"))
		require.Contains(t, resp.Header.Get("Access-Control-Allow-Methods"), "POST")
		require.Equal(t, "600", resp.Header.Get("Access-Control-Max-Age"))
	})
	t.Run("another origin's preflight", func(t *testing.T) {
		resp := preflight(t, "https://evil.example.net")
		require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))
	})
	t.Run("an allowed origin's request sees the headers it needs", func(t *testing.T) {
		resp, _ := h.do(t, http.MethodGet, "/v1/users/me", "", http.Header{"Origin": {"https://app.example.com"}})
		require.Equal(t, "https://app.example.com", resp.Header.Get("Access-Control-Allow-Origin"))
		exposed := resp.Header.Get("Access-Control-Expose-Headers")
		for _, hdr := range []string{"Ratelimit-Limit", "Ratelimit-Remaining", "Ratelimit-Reset", "X-Request-Id"} {
			require.Contains(t, strings.ToLower(exposed), strings.ToLower(hdr))
		}
	})
}

func TestCORSRefusesWildcard(t *testing.T) {
	t.Parallel()
	for _, cfg := range []gateway.CORSConfig{
		{AllowedOrigins: []string{"*"}, AllowCredentials: true},
		{AllowedOrigins: []string{"*"}},
	} {
		_, err := gateway.New(context.Background(), gateway.Config{Logger: discard(), CORS: cfg})
		require.Error(t, err)
	}
}

func TestClientIPReachesServicesOnlyFromTrustedProxies(t *testing.T) {
	t.Parallel()
	t.Run("from a trusted proxy", func(t *testing.T) {
		trusting := setup(t, func(c *gateway.Config) {
			r, err := clientip.NewResolver([]string{"127.0.0.0/8"})
			require.NoError(t, err)
			c.ClientIP = r
		})
		_, body := trusting.do(t, http.MethodGet, "/v1/users/me", "", http.Header{"X-Forwarded-For": {"198.51.100.7"}})
		require.Equal(t, "198.51.100.7", body["user"].(map[string]any)["email"])
	})
	t.Run("from anyone else", func(t *testing.T) {
		untrusting := setup(t)
		_, body := untrusting.do(t, http.MethodGet, "/v1/users/me", "", http.Header{
			"X-Forwarded-For":                     {"198.51.100.7"},
			"Grpc-Metadata-X-Backplane-Client-Ip": {"6.6.6.6"},
		})
		require.Equal(t, "127.0.0.1", body["user"].(map[string]any)["email"], "an untrusted header and a forged metadata key are ignored")
	})
}

func TestOpenAPIAndDocs(t *testing.T) {
	t.Parallel()
	h := setup(t, func(c *gateway.Config) { c.PublicURL = "https://api.example.com" })
	t.Run("the spec", func(t *testing.T) {
		resp, spec := h.do(t, http.MethodGet, "/openapi.json", "", nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "3.1.0", spec["openapi"])
		paths := spec["paths"].(map[string]any)
		require.Contains(t, paths, "/v1/auth/login")
		require.Contains(t, paths, "/v1/notifications")
		require.Equal(t, []any{map[string]any{"url": "https://api.example.com"}}, spec["servers"],
			"clients generated from the served document call this deployment")
	})
	for _, path := range []string{"/docs", "/docs/"} {
		t.Run("the docs page at "+path, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, h.rest.URL+path, nil)
			require.NoError(t, err)
			docs, page := send(t, req)
			require.Equal(t, http.StatusOK, docs.StatusCode)
			require.Contains(t, docs.Header.Get("Content-Type"), "text/html")
			require.Contains(t, docs.Header.Get("Content-Security-Policy"), "script-src 'self';", "no inline script runs")
			require.Contains(t, string(page), `<script src="/docs/docs.js"></script>`)
			require.NotContains(t, string(page), "https://", "the page loads nothing from elsewhere")
		})
	}
	t.Run("the docs script", func(t *testing.T) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, h.rest.URL+"/docs/docs.js", nil)
		require.NoError(t, err)
		script, js := send(t, req)
		require.Equal(t, http.StatusOK, script.StatusCode)
		require.Contains(t, string(js), `fetch("/openapi.json")`, "an absolute URL, which /docs/ resolves too")
		require.NotContains(t, string(js), "https://", "the script loads nothing from elsewhere")
	})
}

func TestOpenAPIKeepsTheGeneratedServerWithoutAPublicURL(t *testing.T) {
	t.Parallel()
	h := setup(t)
	_, spec := h.do(t, http.MethodGet, "/openapi.json", "", nil)
	servers := spec["servers"].([]any)
	require.Equal(t, "http://localhost:8080", servers[0].(map[string]any)["url"])
}

func TestReflectionListsExactlyTheEdge(t *testing.T) {
	t.Parallel()
	h := setup(t)
	stream, err := reflectionpb.NewServerReflectionClient(h.grpc).ServerReflectionInfo(context.Background())
	require.NoError(t, err)
	defer func() { _ = stream.CloseSend() }()

	require.NoError(t, stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}))
	resp, err := stream.Recv()
	require.NoError(t, err)
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	require.ElementsMatch(t, []string{
		"backplane.auth.v1.AuthService", "backplane.subscription.v1.SubscriptionService",
		"backplane.asset.v1.AssetService", "backplane.usage.v1.UsageService",
		"backplane.notification.v1.NotificationService", "grpc.health.v1.Health",
	}, names)

	require.NoError(t, stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{
		FileContainingSymbol: "backplane.auth.v1.AuthService",
	}}))
	resp, err = stream.Recv()
	require.NoError(t, err)
	var methods []string
	for _, raw := range resp.GetFileDescriptorResponse().GetFileDescriptorProto() {
		fdp := &descriptorpb.FileDescriptorProto{}
		require.NoError(t, proto.Unmarshal(raw, fdp))
		if fdp.GetName() != authv1.File_backplane_auth_v1_auth_proto.Path() {
			continue
		}
		for _, m := range fdp.GetService()[0].GetMethod() {
			methods = append(methods, m.GetName())
		}
	}
	require.Contains(t, methods, "Login")
	require.NotContains(t, methods, "IntrospectApiKey", "internal methods are not described at the edge")
	require.NotContains(t, methods, "LookupUser")
}
