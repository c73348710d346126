package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/gateway"
	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
)

// browserProtocols are the protocols a web app's generated protobuf client speaks, as
// connect-go's client speaks them: Connect with JSON and with protobuf, and gRPC-Web.
var browserProtocols = []struct {
	name string
	opts []connect.ClientOption
}{
	{"connect+json", []connect.ClientOption{connect.WithProtoJSON()}},
	{"connect+proto", nil},
	{"grpc-web", []connect.ClientOption{connect.WithGRPCWeb()}},
}

func TestBrowserProtocolsReachTheGRPCDoorOnTheRESTPort(t *testing.T) {
	t.Parallel()
	h := setup(t)
	for _, p := range browserProtocols {
		t.Run(p.name+" unary", func(t *testing.T) {
			me := connect.NewClient[authv1.GetCurrentUserRequest, authv1.GetCurrentUserResponse](
				http.DefaultClient, h.rest.URL+"/backplane.auth.v1.AuthService/GetCurrentUser", p.opts...)
			req := connect.NewRequest(&authv1.GetCurrentUserRequest{})
			req.Header().Set("Authorization", "Bearer token-"+p.name)
			req.Header().Set("X-Request-Id", "req-"+strings.ReplaceAll(p.name, "+", "-"))
			resp, err := me.CallUnary(t.Context(), req)
			require.NoError(t, err)
			// The test backend echoes what travelled with the call.
			require.Equal(t, "Bearer token-"+p.name, resp.Msg.GetUser().GetDisplayName())
			require.Equal(t, "req-"+strings.ReplaceAll(p.name, "+", "-"), resp.Msg.GetUser().GetId(), "the request id travels on")
			require.Equal(t, "127.0.0.1", resp.Msg.GetUser().GetEmail(), "and the client's address")
		})
		t.Run(p.name+" server stream", func(t *testing.T) {
			stream := connect.NewClient[notificationv1.StreamNotificationsRequest, notificationv1.StreamNotificationsResponse](
				http.DefaultClient, h.rest.URL+"/backplane.notification.v1.NotificationService/StreamNotifications", p.opts...)
			s, err := stream.CallServerStream(t.Context(), connect.NewRequest(&notificationv1.StreamNotificationsRequest{}))
			require.NoError(t, err)
			var counts []int32
			for s.Receive() {
				counts = append(counts, s.Msg().GetUnreadCount())
			}
			require.NoError(t, s.Err())
			require.NoError(t, s.Close())
			require.Equal(t, []int32{1, 2, 3}, counts)
		})
		t.Run(p.name+" validation", func(t *testing.T) {
			signUp := connect.NewClient[authv1.SignUpRequest, authv1.SignUpResponse](
				http.DefaultClient, h.rest.URL+"/backplane.auth.v1.AuthService/SignUp", p.opts...)
			_, err := signUp.CallUnary(t.Context(), connect.NewRequest(&authv1.SignUpRequest{Email: "nope"}))
			require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err), "the gRPC door's chain validates")
			require.Zero(t, h.backend.signups.Load())
		})
		t.Run(p.name+" internal RPC", func(t *testing.T) {
			introspect := connect.NewClient[authv1.IntrospectApiKeyRequest, authv1.IntrospectApiKeyResponse](
				http.DefaultClient, h.rest.URL+"/backplane.auth.v1.AuthService/IntrospectApiKey", p.opts...)
			_, err := introspect.CallUnary(t.Context(), connect.NewRequest(&authv1.IntrospectApiKeyRequest{Secret: "bpk_x"}))
			require.Equal(t, connect.CodeUnimplemented, connect.CodeOf(err), "INTERNAL RPCs are not at the edge")
		})
	}
}

func TestBrowserProtocolsEnforceTheAccessPolicy(t *testing.T) {
	t.Parallel()
	s := setupSecured(t, nil)
	token := s.token(t, "user")
	for _, p := range browserProtocols {
		t.Run(p.name, func(t *testing.T) {
			me := connect.NewClient[authv1.GetCurrentUserRequest, authv1.GetCurrentUserResponse](
				http.DefaultClient, s.rest.URL+"/backplane.auth.v1.AuthService/GetCurrentUser", p.opts...)
			_, err := me.CallUnary(t.Context(), connect.NewRequest(&authv1.GetCurrentUserRequest{}))
			require.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err), "no credential")

			req := connect.NewRequest(&authv1.GetCurrentUserRequest{})
			req.Header().Set("Authorization", "Bearer forged.jwt.token")
			_, err = me.CallUnary(t.Context(), req)
			require.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err), "a bad credential")

			req = connect.NewRequest(&authv1.GetCurrentUserRequest{})
			req.Header().Set("Authorization", "Bearer "+token)
			_, err = me.CallUnary(t.Context(), req)
			require.NoError(t, err)

			stream := connect.NewClient[notificationv1.StreamNotificationsRequest, notificationv1.StreamNotificationsResponse](
				http.DefaultClient, s.rest.URL+"/backplane.notification.v1.NotificationService/StreamNotifications", p.opts...)
			st, err := stream.CallServerStream(t.Context(), connect.NewRequest(&notificationv1.StreamNotificationsRequest{}))
			if err == nil {
				require.False(t, st.Receive(), "a stream without a credential yields nothing")
				err = st.Err()
				require.NoError(t, st.Close())
			}
			var cerr *connect.Error
			require.ErrorAs(t, err, &cerr)
			require.Equal(t, connect.CodeUnauthenticated, cerr.Code(), "streams are refused alike")
		})
	}
}

func TestPlainPOSTToAMethodPathIsNotAnRPC(t *testing.T) {
	t.Parallel()
	h := setup(t)
	// Without a Connect or gRPC-Web marker it is a REST request, and there is no such route.
	resp, body := h.do(t, http.MethodPost, "/backplane.auth.v1.AuthService/GetCurrentUser", `{}`, nil)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.EqualValues(t, 5, body["code"], "the usual {code, message, details} body")
}

func TestCORSAllowsBrowserProtocolHeaders(t *testing.T) {
	t.Parallel()
	h := setup(t, func(c *gateway.Config) { c.CORS.AllowedOrigins = []string{"https://app.example.com"} })
	req, err := http.NewRequestWithContext(context.Background(), http.MethodOptions, h.rest.URL+"/backplane.auth.v1.AuthService/GetCurrentUser", nil)
	require.NoError(t, err)
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Set("Access-Control-Request-Method", http.MethodPost)
	req.Header.Set("Access-Control-Request-Headers", "authorization,connect-protocol-version,content-type,x-grpc-web,x-user-agent")
	resp, _ := send(t, req) // browsers send the header names sorted and lower-cased
	require.Equal(t, "https://app.example.com", resp.Header.Get("Access-Control-Allow-Origin"))
	allowed := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers"))
	for _, h := range []string{"x-grpc-web", "connect-protocol-version", "x-user-agent"} {
		require.Contains(t, allowed, h)
	}
}
