package backplane

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	usagev1 "github.com/backplane/backplane/gen/backplane/usage/v1"
)

func TestTokensFromEveryAnswerShape(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	want := Tokens{AccessToken: "a", RefreshToken: "r", AccessTokenExpiry: now.Add(900 * time.Second)}
	for name, resp := range map[string]any{
		"login":   &authv1.LoginResponse{AccessToken: "a", RefreshToken: "r", ExpiresIn: 900},
		"refresh": &authv1.RefreshTokenResponse{AccessToken: "a", RefreshToken: "r", ExpiresIn: 900},
		"sign-up": &authv1.SignUpResponse{AccessToken: "a", RefreshToken: "r", ExpiresIn: 900},
		"verify":  &authv1.VerifyEmailResponse{AccessToken: "a", RefreshToken: "r", ExpiresIn: 900},
	} {
		got, err := tokensFrom(resp, now)
		require.NoError(t, err, name)
		require.Equal(t, want, got, name)
	}

	for name, resp := range map[string]any{
		"sign-up awaiting verification": &authv1.SignUpResponse{EmailVerificationRequired: true},
		"no refresh token":              &authv1.LoginResponse{AccessToken: "a"},
		"not a token answer":            &authv1.User{},
	} {
		_, err := tokensFrom(resp, now)
		require.ErrorIs(t, err, errNoTokens, name)
	}

	got, err := tokensFrom(&authv1.LoginResponse{AccessToken: "a", RefreshToken: "r"}, now)
	require.NoError(t, err)
	require.True(t, got.AccessTokenExpiry.IsZero(), "no expires_in: the expiry is unknown")
}

// The classification comes from the protos: audience from the access policy, safety
// from the HTTP verb and the idempotency_key field.
func TestMethodTableReadsTheContract(t *testing.T) {
	t.Parallel()
	table := methodTable()
	for name, want := range map[string]struct{ public, idempotent, keyed bool }{
		"/backplane.auth.v1.AuthService/Login":                     {public: true},
		"/backplane.auth.v1.AuthService/RefreshToken":              {public: true},
		"/backplane.auth.v1.AuthService/GetCurrentUser":            {idempotent: true},
		"/backplane.auth.v1.AuthService/UpdateCurrentUser":         {},
		"/backplane.auth.v1.AuthService/DeleteApiKey":              {idempotent: true},
		"/backplane.subscription.v1.SubscriptionService/ListPlans": {public: true, idempotent: true},
		"/backplane.asset.v1.AssetService/UploadAssetContent":      {idempotent: true},
		"/backplane.usage.v1.UsageService/RecordUsage":             {keyed: true},
	} {
		m, ok := table[name]
		require.True(t, ok, name)
		require.Equal(t, want.public, m.public, name)
		require.Equal(t, want.idempotent, m.idempotent, name)
		require.Equal(t, want.keyed, m.idempotencyKey != nil, name)
	}
	record := table["/backplane.usage.v1.UsageService/RecordUsage"]
	require.True(t, record.safeToRepeat(&usagev1.RecordUsageRequest{IdempotencyKey: "k"}))
	require.False(t, record.safeToRepeat(&usagev1.RecordUsageRequest{}))
}

func TestBackoffIsJitteredAndCapped(t *testing.T) {
	t.Parallel()
	p := RetryPolicy{InitialBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}.withDefaults()
	for n, ceiling := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 80: time.Second} {
		seen := map[time.Duration]bool{}
		for range 200 {
			d := p.backoff(n)
			require.Positive(t, d)
			require.LessOrEqual(t, d, ceiling, "retry %d", n)
			seen[d] = true
		}
		require.Greater(t, len(seen), 100, "retry %d: waits are spread", n)
	}
	for range 200 {
		d := serverDelay(time.Second)
		require.GreaterOrEqual(t, d, time.Second, "never earlier than the server asked")
		require.LessOrEqual(t, d, 1100*time.Millisecond)
	}
}

func TestFromStatusDecodesEveryDetail(t *testing.T) {
	t.Parallel()
	st, err := status.New(codes.ResourceExhausted, "quota exceeded").WithDetails(
		&errdetails.QuotaFailure{Violations: []*errdetails.QuotaFailure_Violation{{Subject: "meter:api_calls", Description: "1000 of 1000 used"}}},
		&errdetails.RetryInfo{RetryDelay: durationpb.New(90 * time.Second)},
		&errdetails.ErrorInfo{Reason: "QUOTA_EXCEEDED", Domain: "backplane.dev", Metadata: map[string]string{"meter": "api_calls"}},
		&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "quantity", Description: "too large", Reason: "int64.lte"}}},
	)
	require.NoError(t, err)
	trailer := metadata.Pairs(requestIDKey, "req-1")

	got := asError(context.Background(), st.Err(), nil, trailer)
	var e *Error
	require.ErrorAs(t, got, &e)
	require.Equal(t, codes.ResourceExhausted, e.Code)
	require.Equal(t, "quota exceeded", e.Message)
	require.Equal(t, "req-1", e.RequestID)
	require.Equal(t, []QuotaViolation{{Subject: "meter:api_calls", Description: "1000 of 1000 used"}}, e.QuotaFailure)
	require.Equal(t, &RetryInfo{Delay: 90 * time.Second}, e.RetryInfo)
	require.Equal(t, &ErrorInfo{Reason: "QUOTA_EXCEEDED", Domain: "backplane.dev", Metadata: map[string]string{"meter": "api_calls"}}, e.ErrorInfo)
	require.Equal(t, []FieldViolation{{Field: "quantity", Description: "too large", Reason: "int64.lte"}}, e.FieldViolations)
	require.Equal(t, "backplane: ResourceExhausted: quota exceeded", e.Error())

	// Plain gRPC code keeps working, and a second conversion changes nothing.
	require.Equal(t, codes.ResourceExhausted, status.Code(got))
	require.Len(t, status.Convert(got).Details(), 4)
	require.Same(t, e, asError(context.Background(), got, nil, nil))

	// An error that is not a status (a token store's) passes through.
	plain := errors.New("disk full")
	require.Same(t, plain, asError(context.Background(), plain, nil, nil))
}

func TestContextErrorsStayVisible(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := asError(ctx, status.Error(codes.Canceled, "context canceled"), nil, nil)
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, codes.Canceled, status.Code(err))
}

// BenchmarkInterceptor is the client's own work per call, without the network: the
// credential, the metadata and the bookkeeping for errors, around an invoker that
// returns at once. BenchmarkOverheadVsBareClient puts it in proportion to a real call.
func BenchmarkInterceptor(b *testing.B) {
	c, err := New("127.0.0.1:1", WithPlaintext())
	require.NoError(b, err)
	b.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	require.NoError(b, c.session.set(ctx, Tokens{AccessToken: "token", RefreshToken: "r", AccessTokenExpiry: time.Now().Add(time.Hour)}))
	invoker := func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error { return nil }
	req, reply := &authv1.GetCurrentUserRequest{}, &authv1.GetCurrentUserResponse{}
	b.ReportAllocs()
	for b.Loop() {
		if err := c.unary(ctx, "/backplane.auth.v1.AuthService/GetCurrentUser", req, reply, nil, invoker); err != nil {
			b.Fatal(err)
		}
	}
}
