package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/backplane/backplane/gateway"
	assetv1 "github.com/backplane/backplane/gen/backplane/asset/v1"
	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	subscriptionv1 "github.com/backplane/backplane/gen/backplane/subscription/v1"
	"github.com/backplane/backplane/internal/grpctest"
	"github.com/backplane/backplane/internal/logging"
	"github.com/backplane/backplane/services"
)

// backend stands in for the services behind the edge, recording what reached it.
type backend struct {
	authv1.UnimplementedAuthServiceServer
	notificationv1.UnimplementedNotificationServiceServer
	assetv1.UnimplementedAssetServiceServer
	subscriptionv1.UnimplementedSubscriptionServiceServer

	introspected chan struct{}
	lastWebhook  chan webhook
	signups      atomic.Int32
}

type webhook struct {
	body      []byte
	signature string
}

func firstMD(ctx context.Context, key string) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (b *backend) GetCurrentUser(ctx context.Context, _ *authv1.GetCurrentUserRequest) (*authv1.GetCurrentUserResponse, error) {
	// Echo what travelled with the call, so tests can see it arrive.
	return &authv1.GetCurrentUserResponse{User: &authv1.User{
		Id:          firstMD(ctx, "x-request-id"),
		DisplayName: firstMD(ctx, "authorization"),
		Email:       firstMD(ctx, "x-backplane-client-ip"),
	}}, nil
}

func (b *backend) DeleteSession(context.Context, *authv1.DeleteSessionRequest) (*authv1.DeleteSessionResponse, error) {
	st, _ := status.New(codes.NotFound, "session not found").WithDetails(&errdetails.ErrorInfo{Reason: "SESSION_NOT_FOUND", Domain: "auth.backplane"})
	return nil, st.Err()
}

func (b *backend) SignUp(context.Context, *authv1.SignUpRequest) (*authv1.SignUpResponse, error) {
	b.signups.Add(1)
	return &authv1.SignUpResponse{User: &authv1.User{Id: "new"}}, nil
}

func (b *backend) IntrospectApiKey(context.Context, *authv1.IntrospectApiKeyRequest) (*authv1.IntrospectApiKeyResponse, error) {
	select {
	case b.introspected <- struct{}{}:
	default:
	}
	return &authv1.IntrospectApiKeyResponse{UserId: "leaked"}, nil
}

func (b *backend) StreamNotifications(_ *notificationv1.StreamNotificationsRequest, stream grpc.ServerStreamingServer[notificationv1.StreamNotificationsResponse]) error {
	for i := range 3 {
		if err := stream.Send(&notificationv1.StreamNotificationsResponse{UnreadCount: int32(i + 1)}); err != nil {
			return err
		}
	}
	return nil
}

func (b *backend) UploadAsset(stream grpc.ClientStreamingServer[assetv1.UploadAssetRequest, assetv1.UploadAssetResponse]) error {
	var name string
	var size int64
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&assetv1.UploadAssetResponse{Asset: &assetv1.Asset{Filename: name, SizeBytes: size}})
		}
		if err != nil {
			return err
		}
		if md := msg.GetMetadata(); md != nil {
			name = md.GetFilename()
		}
		size += int64(len(msg.GetChunk()))
	}
}

func (b *backend) HandleStripeWebhook(ctx context.Context, req *subscriptionv1.HandleStripeWebhookRequest) (*subscriptionv1.HandleStripeWebhookResponse, error) {
	select {
	case b.lastWebhook <- webhook{body: req.GetBody().GetData(), signature: firstMD(ctx, "stripe-signature")}:
	default: // a test that does not read it (the fuzzer) must not block the handler
	}
	return &subscriptionv1.HandleStripeWebhookResponse{}, nil
}

type harness struct {
	gateway     *gateway.Gateway
	backend     *backend
	rest        *httptest.Server
	restHandler http.Handler
	grpc        *grpc.ClientConn
}

func discard() *slog.Logger { return logging.New(io.Discard, logging.Options{}) }

func setup(t testing.TB, opts ...func(*gateway.Config)) *harness {
	t.Helper()
	b := &backend{introspected: make(chan struct{}, 1), lastWebhook: make(chan webhook, 1)}

	// The backend is a plain gRPC server, not grpctest's, on purpose: the edge must
	// enforce what it is asked to (credentials, validation), and a backend running the
	// production chain would hide an edge that does not.
	backendSrv := grpc.NewServer()
	authv1.RegisterAuthServiceServer(backendSrv, b)
	notificationv1.RegisterNotificationServiceServer(backendSrv, b)
	assetv1.RegisterAssetServiceServer(backendSrv, b)
	subscriptionv1.RegisterSubscriptionServiceServer(backendSrv, b)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = backendSrv.Serve(lis) }()
	t.Cleanup(backendSrv.Stop)
	backendConn := grpctest.Dial(t, lis.Addr().String())

	backends := map[string]grpc.ClientConnInterface{}
	for _, owner := range services.Names() {
		backends[owner] = backendConn
	}
	cfg := gateway.Config{
		Logger:   logging.New(io.Discard, logging.Options{}),
		Server:   grpctest.ServerConfig(t),
		Backends: backends,
		APIs:     services.APIs(),
	}
	for _, o := range opts {
		o(&cfg)
	}
	gw, err := gateway.New(context.Background(), cfg)
	require.NoError(t, err)
	rest := httptest.NewServer(gw.REST())
	t.Cleanup(rest.Close)
	return &harness{gateway: gw, backend: b, rest: rest, restHandler: gw.REST(), grpc: grpctest.Serve(t, gw.GRPC()).Conn}
}

// reply is what a test reads of an HTTP response: its body is read and closed by then.
type reply struct {
	StatusCode int
	Header     http.Header
}

// send makes a request and reads the whole answer.
func send(t *testing.T, req *http.Request) (reply, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	return reply{StatusCode: resp.StatusCode, Header: resp.Header}, raw
}

// do makes a request to the REST door and decodes its JSON answer, if any.
func (h *harness) do(t *testing.T, method, path, body string, header http.Header) (reply, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, h.rest.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, raw := send(t, req)
	var out map[string]any
	if len(raw) > 0 {
		require.NoError(t, json.Unmarshal(raw, &out), "body: %s", raw)
	}
	return resp, out
}

func TestRESTForwardsAndCarriesRequestID(t *testing.T) {
	t.Parallel()
	h := setup(t)
	t.Run("the request id and the credential reach the service", func(t *testing.T) {
		resp, body := h.do(t, http.MethodGet, "/v1/users/me", "", http.Header{
			"X-Request-Id":  {"req-123"},
			"Authorization": {"Bearer abc"},
		})
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "req-123", resp.Header.Get("X-Request-Id"))
		user := body["user"].(map[string]any)
		require.Equal(t, "req-123", user["id"], "the request id reaches the service")
		require.Equal(t, "Bearer abc", user["displayName"], "the credential reaches the service")
		require.Equal(t, false, user["emailVerified"], "unpopulated fields are emitted in lowerCamelCase")
	})
	t.Run("an unfit request id is replaced", func(t *testing.T) {
		resp, body := h.do(t, http.MethodGet, "/v1/users/me", "", http.Header{"X-Request-Id": {"bad id; with spaces"}})
		require.Equal(t, http.StatusOK, resp.StatusCode)
		minted := resp.Header.Get("X-Request-Id")
		require.Len(t, minted, 32, "an unfit request id is replaced")
		require.Equal(t, minted, body["user"].(map[string]any)["id"])
	})
}

func TestRESTErrorsAreJSONStatuses(t *testing.T) {
	t.Parallel()
	h := setup(t)
	t.Run("a service's error, with its details", func(t *testing.T) {
		resp, body := h.do(t, http.MethodDelete, "/v1/auth/sessions/0b7c3f1e-9d7e-4f7a-8a8e-2f1d6f1a9c11", "", nil)
		require.Equal(t, http.StatusNotFound, resp.StatusCode)
		require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		require.EqualValues(t, codes.NotFound, body["code"])
		require.Equal(t, "session not found", body["message"])
		details := body["details"].([]any)
		require.Len(t, details, 1)
		require.Equal(t, "SESSION_NOT_FOUND", details[0].(map[string]any)["reason"])
	})
	t.Run("no route", func(t *testing.T) {
		resp, body := h.do(t, http.MethodGet, "/v1/nowhere", "", nil)
		require.Equal(t, http.StatusNotFound, resp.StatusCode)
		require.EqualValues(t, codes.NotFound, body["code"])
		require.Contains(t, body["message"], "/v1/nowhere")
	})
	t.Run("malformed JSON", func(t *testing.T) {
		resp, body := h.do(t, http.MethodPost, "/v1/auth/signup", `{"email": "a@b.co", `, nil)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "malformed JSON is the client's error")
		require.EqualValues(t, codes.InvalidArgument, body["code"])
	})
	t.Run("an unknown field", func(t *testing.T) {
		resp, _ := h.do(t, http.MethodPost, "/v1/auth/signup", `{"email": "a@b.co", "pasword": "x"}`, nil)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "unknown fields are refused")
	})
}

func TestInternalRPCsAreUnreachableAtTheEdge(t *testing.T) {
	t.Parallel()
	h := setup(t)

	resp, _ := h.do(t, http.MethodPost, "/backplane.auth.v1.AuthService/IntrospectApiKey", `{"secret":"bpk_x"}`, nil)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)

	_, err := authv1.NewAuthServiceClient(h.grpc).IntrospectApiKey(context.Background(), &authv1.IntrospectApiKeyRequest{Secret: "bpk_x"})
	require.Equal(t, codes.Unimplemented, status.Code(err))
	select {
	case <-h.backend.introspected:
		t.Fatal("an INTERNAL RPC reached the service through the edge")
	default:
	}
}

func TestGRPCFrontDoorForwardsUnary(t *testing.T) {
	t.Parallel()
	h := setup(t)
	t.Run("the request id and the credential reach the service", func(t *testing.T) {
		ctx := metadata.AppendToOutgoingContext(context.Background(), "x-request-id", "grpc-req-1", "authorization", "Bearer t")
		var header metadata.MD
		resp, err := authv1.NewAuthServiceClient(h.grpc).GetCurrentUser(ctx, &authv1.GetCurrentUserRequest{}, grpc.Header(&header))
		require.NoError(t, err)
		require.Equal(t, "grpc-req-1", resp.GetUser().GetId())
		require.Equal(t, "Bearer t", resp.GetUser().GetDisplayName())
		require.Equal(t, []string{"grpc-req-1"}, header.Get("x-request-id"))
	})
	t.Run("an error's details survive the proxy", func(t *testing.T) {
		_, err := authv1.NewAuthServiceClient(h.grpc).DeleteSession(context.Background(), &authv1.DeleteSessionRequest{SessionId: "0b7c3f1e-9d7e-4f7a-8a8e-2f1d6f1a9c11"})
		st := status.Convert(err)
		require.Equal(t, codes.NotFound, st.Code())
		require.Len(t, st.Details(), 1, "details survive the proxy")
	})
}

func TestGRPCFrontDoorValidatesBeforeForwarding(t *testing.T) {
	t.Parallel()
	h := setup(t)
	_, err := authv1.NewAuthServiceClient(h.grpc).SignUp(context.Background(), &authv1.SignUpRequest{Email: "nope", Password: "x"})
	st := status.Convert(err)
	require.Equal(t, codes.InvalidArgument, st.Code())
	require.NotEmpty(t, st.Details())
	br, ok := st.Details()[0].(*errdetails.BadRequest)
	require.True(t, ok)
	require.GreaterOrEqual(t, len(br.GetFieldViolations()), 3)
	var fields []string
	for _, v := range br.GetFieldViolations() {
		fields = append(fields, v.GetField())
	}
	require.Contains(t, fields, "display_name", "gRPC clients see proto names")
	require.Contains(t, st.Message(), "display_name: ")
}

func TestGRPCFrontDoorForwardsStreams(t *testing.T) {
	t.Parallel()
	h := setup(t)
	t.Run("a server stream", func(t *testing.T) {
		stream, err := notificationv1.NewNotificationServiceClient(h.grpc).StreamNotifications(context.Background(), &notificationv1.StreamNotificationsRequest{})
		require.NoError(t, err)
		var got []int32
		for {
			msg, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
			got = append(got, msg.GetUnreadCount())
		}
		require.Equal(t, []int32{1, 2, 3}, got)
	})
	t.Run("a client stream", func(t *testing.T) {
		up, err := assetv1.NewAssetServiceClient(h.grpc).UploadAsset(context.Background())
		require.NoError(t, err)
		require.NoError(t, up.Send(&assetv1.UploadAssetRequest{Payload: &assetv1.UploadAssetRequest_Metadata{Metadata: &assetv1.UploadAssetMetadata{
			Filename: "a.txt", ContentType: "text/plain", SizeBytes: 10,
		}}}))
		for range 2 {
			require.NoError(t, up.Send(&assetv1.UploadAssetRequest{Payload: &assetv1.UploadAssetRequest_Chunk{Chunk: []byte("hello")}}))
		}
		res, err := up.CloseAndRecv()
		require.NoError(t, err)
		require.Equal(t, "a.txt", res.GetAsset().GetFilename())
		require.EqualValues(t, 10, res.GetAsset().GetSizeBytes())
	})
}

func TestWebhookBodyAndSignatureArriveUntouched(t *testing.T) {
	t.Parallel()
	h := setup(t)
	payload := `{"id":"evt_1","object":"event",  "type":"invoice.paid"}`
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, h.rest.URL+"/webhooks/stripe", bytes.NewBufferString(payload))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", "t=1,v1=abc")
	resp, _ := send(t, req)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	got := <-h.backend.lastWebhook
	require.Equal(t, payload, string(got.body), "the body is forwarded byte for byte")
	require.Equal(t, "t=1,v1=abc", got.signature)
}
