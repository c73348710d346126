package gateway_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/ratelimit"
	"github.com/backplane/backplane/internal/redistest"
	"github.com/backplane/backplane/internal/scenario"
)

// randomEmail is an address no other test uses, so per-account budgets in the shared
// Redis do not collide.
func randomEmail() string { return "u" + rand.Text() + "@example.com" }

// TestSignInSpendsTheAddressBudgetWhateverTheCredential: a bearer token sent with a
// sign-in call does not move it onto the (larger, renewable) user budget. Login costs 5
// of the address's 10 a minute, so the third from one address is refused, token or not.
func TestSignInSpendsTheAddressBudgetWhateverTheCredential(t *testing.T) {
	t.Parallel()
	s := setupSecured(t, limiter(t, redistest.Client(t), ratelimit.FailOpen, "10/m", "1000/m"))

	scenario.Step(t, "REST door", func(t *testing.T) {
		h := http.Header{"X-Forwarded-For": {randomIP(t)}, "Authorization": {"Bearer " + s.token(t)}}
		for i := range 2 {
			resp, _ := s.do(t, http.MethodPost, "/v1/auth/login", fmt.Sprintf(`{"email":%q,"password":"x"}`, randomEmail()), h)
			require.NotEqual(t, http.StatusTooManyRequests, resp.StatusCode, "login %d", i)
			require.Equal(t, "10", resp.Header.Get("RateLimit-Limit"), "the address's budget is the one reported")
		}
		resp, _ := s.do(t, http.MethodPost, "/v1/auth/login", fmt.Sprintf(`{"email":%q,"password":"x"}`, randomEmail()), h)
		require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	})
	scenario.Step(t, "gRPC door", func(t *testing.T) {
		ctx := metadata.AppendToOutgoingContext(context.Background(),
			"x-forwarded-for", randomIP(t), "authorization", "Bearer "+s.token(t))
		client := authv1.NewAuthServiceClient(s.grpc)
		_, err := client.ForgotPassword(ctx, &authv1.ForgotPasswordRequest{Email: randomEmail()})
		require.NotEqual(t, codes.ResourceExhausted, status.Code(err))
		_, err = client.Login(ctx, &authv1.LoginRequest{Email: randomEmail(), Password: "x"})
		require.Equal(t, codes.ResourceExhausted, status.Code(err), "ForgotPassword (cost 10) spent the address's budget")
	})
}

// TestSignInSpendsTheTargetAccountsBudget: many addresses cannot pile onto one account.
func TestSignInSpendsTheTargetAccountsBudget(t *testing.T) {
	t.Parallel()
	s := setupSecured(t, limiter(t, redistest.Client(t), ratelimit.FailOpen, "10/m", "1000/m"))
	victim := randomEmail()

	scenario.Step(t, "two logins from two addresses spend the account's budget", func(t *testing.T) {
		for i := range 2 {
			resp, _ := s.do(t, http.MethodPost, "/v1/auth/login", fmt.Sprintf(`{"email":%q,"password":"x"}`, victim),
				http.Header{"X-Forwarded-For": {randomIP(t)}})
			require.NotEqual(t, http.StatusTooManyRequests, resp.StatusCode, "login %d", i)
		}
	})
	scenario.Step(t, "a third address is refused, whatever the case of the email", func(t *testing.T) {
		ctx := metadata.AppendToOutgoingContext(context.Background(), "x-forwarded-for", randomIP(t))
		_, err := authv1.NewAuthServiceClient(s.grpc).Login(ctx, &authv1.LoginRequest{Email: "U" + victim[1:], Password: "x"})
		require.Equal(t, codes.ResourceExhausted, status.Code(err))
	})
	scenario.Step(t, "an email-sending call for the signed-in user spends that user's account budget", func(t *testing.T) {
		tok := s.token(t)
		client := authv1.NewAuthServiceClient(s.grpc)
		ctx := metadata.AppendToOutgoingContext(context.Background(), "x-forwarded-for", randomIP(t), "authorization", "Bearer "+tok)
		_, err := client.ResendVerificationEmail(ctx, &authv1.ResendVerificationEmailRequest{})
		require.NotEqual(t, codes.ResourceExhausted, status.Code(err))
		ctx = metadata.AppendToOutgoingContext(context.Background(), "x-forwarded-for", randomIP(t), "authorization", "Bearer "+tok)
		_, err = client.ResendVerificationEmail(ctx, &authv1.ResendVerificationEmailRequest{})
		require.Equal(t, codes.ResourceExhausted, status.Code(err), "a second address, the same account")
	})
}
