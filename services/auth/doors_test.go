package auth

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/backplane/backplane/gateway"
	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/clientip"
	"github.com/backplane/backplane/internal/grpctest"
)

// door is one way in to the auth service: the REST front door, the gRPC front door, or
// a service's direct call to the auth server. Tests of the API run the same steps through each, since a
// fix that holds at one door and not another is no fix.
type door struct {
	name string
	// call makes one call as the client at ip (through a trusted proxy that names it),
	// with token as its credential when set, and fills out. It answers the status code.
	call func(t *testing.T, ip, token string, method string, in, out proto.Message) codes.Code
}

// doorsBundle is the auth service behind the production edge (package gateway), whose
// backend connection carries the gateway's service credential, as in the mesh.
type doorsBundle struct {
	*grpcBundle
	doors []door
}

// restRoutes are the REST routes of the methods the door tests call: every one takes
// the whole request as its body, except UpdateCurrentUser (the user) and GETs.
var restRoutes = map[string]struct{ verb, path, body string }{
	"SignUp":            {http.MethodPost, "/v1/auth/signup", "*"},
	"Login":             {http.MethodPost, "/v1/auth/login", "*"},
	"RefreshToken":      {http.MethodPost, "/v1/auth/refresh", "*"},
	"ResetPassword":     {http.MethodPost, "/v1/auth/password:reset", "*"},
	"ChangePassword":    {http.MethodPost, "/v1/auth/password:change", "*"},
	"CreateApiKey":      {http.MethodPost, "/v1/api-keys", "*"},
	"ListApiKeys":       {http.MethodGet, "/v1/api-keys", ""},
	"GetCurrentUser":    {http.MethodGet, "/v1/users/me", ""},
	"UpdateCurrentUser": {http.MethodPatch, "/v1/users/me", "user"},
	"ForgotPassword":    {http.MethodPost, "/v1/auth/password:forgot", "*"},
}

func setupDoors(t *testing.T, opts ...option) *doorsBundle {
	t.Helper()
	b := setupGRPC(t, opts...)
	resolver, err := clientip.NewResolver([]string{"127.0.0.1", "::1"})
	require.NoError(t, err)
	sc := grpctest.ServerConfig(t)
	sc.Authenticate.Unary = append(sc.Authenticate.Unary, b.in.Unary())
	sc.Authenticate.Stream = append(sc.Authenticate.Stream, b.in.Stream())
	gw, err := gateway.New(t.Context(), gateway.Config{
		Logger:   slog.New(slog.DiscardHandler),
		Server:   sc,
		Backends: map[string]grpc.ClientConnInterface{"auth": b.gatewayConn},
		APIs:     Definition().APIs,
		ClientIP: resolver,
	})
	require.NoError(t, err)
	rest := httptest.NewServer(gw.REST())
	t.Cleanup(rest.Close)
	edge := grpctest.Serve(t, gw.GRPC()).Conn

	viaGRPC := func(conn grpc.ClientConnInterface) func(*testing.T, string, string, string, proto.Message, proto.Message) codes.Code {
		return func(t *testing.T, ip, token, method string, in, out proto.Message) codes.Code {
			ctx := t.Context()
			if ip != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "x-forwarded-for", ip)
			}
			if token != "" {
				ctx = grpctest.Bearer(ctx, token)
			}
			return status.Code(conn.Invoke(ctx, "/backplane.auth.v1.AuthService/"+method, in, out))
		}
	}
	b2 := &doorsBundle{grpcBundle: b}
	b2.doors = []door{
		{name: "REST", call: func(t *testing.T, ip, token, method string, in, out proto.Message) codes.Code {
			route, ok := restRoutes[method]
			require.True(t, ok, "no REST route for %s in the test", method)
			var body io.Reader
			switch route.body {
			case "*":
				raw, err := protojson.Marshal(in)
				require.NoError(t, err)
				body = bytes.NewReader(raw)
			case "user":
				raw, err := protojson.Marshal(in.(*authv1.UpdateCurrentUserRequest).GetUser())
				require.NoError(t, err)
				body = bytes.NewReader(raw)
			}
			req, err := http.NewRequestWithContext(t.Context(), route.verb, rest.URL+route.path, body)
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			if ip != "" {
				req.Header.Set("X-Forwarded-For", ip)
			}
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			raw, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			if resp.StatusCode != http.StatusOK {
				var st struct {
					Code codes.Code `json:"code"`
				}
				require.NoError(t, json.Unmarshal(raw, &st), "%s: %s", resp.Status, raw)
				require.NotEqual(t, codes.OK, st.Code, "%s: %s", resp.Status, raw)
				return st.Code
			}
			require.NoError(t, protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(raw, out), "%s", raw)
			return codes.OK
		}},
		{name: "gRPC", call: viaGRPC(edge)},
		// A service calling auth directly, past the edge, relays its client's address
		// as the edge does.
		{name: "direct", call: func(t *testing.T, ip, token, method string, in, out proto.Message) codes.Code {
			ctx := t.Context()
			if ip != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, clientip.MetadataKey, ip)
			}
			if token != "" {
				ctx = grpctest.Bearer(ctx, token)
			}
			return status.Code(b.gatewayConn.Invoke(ctx, "/backplane.auth.v1.AuthService/"+method, in, out))
		}},
	}
	return b2
}

// login signs in through d as the client at ip.
func (d door) login(t *testing.T, ip, email, password, device string) (*authv1.LoginResponse, codes.Code) {
	t.Helper()
	resp := &authv1.LoginResponse{}
	code := d.call(t, ip, "", "Login", &authv1.LoginRequest{Email: email, Password: password, DeviceToken: device}, resp)
	return resp, code
}
