package auth

import (
	"context"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/authn"
	"github.com/backplane/backplane/internal/scenario"
)

// TestRefreshRetryStaysOneChain: a refresh retried within the grace window is answered
// with the same successor, so the session never forks into two chains.
func TestRefreshRetryStaysOneChain(t *testing.T) {
	t.Parallel()
	b := setupDoors(t)
	for _, d := range b.doors {
		t.Run(d.name, func(t *testing.T) {
			acct := b.signUp(t, uniqueEmail())
			first, retry := &authv1.RefreshTokenResponse{}, &authv1.RefreshTokenResponse{}
			req := &authv1.RefreshTokenRequest{RefreshToken: acct.tokens.GetRefreshToken()}
			require.Equal(t, codes.OK, d.call(t, "", "", "RefreshToken", req, first))
			require.Equal(t, codes.OK, d.call(t, "", "", "RefreshToken", req, retry))
			require.Equal(t, first.GetRefreshToken(), retry.GetRefreshToken(), "the same successor")

			var tokens int
			require.NoError(t, b.pool.QueryRow(t.Context(),
				"SELECT count(*) FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id WHERE s.user_id = $1",
				acct.user.GetId()).Scan(&tokens))
			require.Equal(t, 2, tokens, "one chain: the first token and its one successor")

			next := &authv1.RefreshTokenResponse{}
			require.Equal(t, codes.OK, d.call(t, "", "", "RefreshToken",
				&authv1.RefreshTokenRequest{RefreshToken: retry.GetRefreshToken()}, next), "the chain goes on")
		})
	}
}

// TestAPIKeysDoNotOutliveRecovery: an unverified account cannot make API keys, a
// password reset deletes every key, and a password change deletes the keys other
// sessions made unless asked to keep them.
func TestAPIKeysDoNotOutliveRecovery(t *testing.T) {
	t.Parallel()
	b := setupDoors(t)
	scopes := []string{"profile:read"}
	for _, d := range b.doors {
		t.Run(d.name, func(t *testing.T) {
			acct := b.signUp(t, uniqueEmail())
			createKey := func(t *testing.T, access string) (*authv1.CreateApiKeyResponse, codes.Code) {
				resp := &authv1.CreateApiKeyResponse{}
				code := d.call(t, "", access, "CreateApiKey", &authv1.CreateApiKeyRequest{DisplayName: "k", Scopes: scopes}, resp)
				return resp, code
			}
			keyWorks := func(t *testing.T, secret string) bool {
				_, err := b.srv.APIKeys().Introspect(context.Background(), secret)
				if err != nil {
					require.ErrorIs(t, err, authn.ErrInvalidToken)
				}
				return err == nil
			}
			var mine, other *authv1.CreateApiKeyResponse
			var second *authv1.LoginResponse

			scenario.Step(t, "an unverified account cannot create API keys", func(t *testing.T) {
				_, code := createKey(t, acct.tokens.GetAccessToken())
				require.Equal(t, codes.FailedPrecondition, code)
			})
			scenario.Step(t, "a verified one can", func(t *testing.T) {
				acct = b.verify(t, acct)
				var code codes.Code
				other, code = createKey(t, acct.tokens.GetAccessToken())
				require.Equal(t, codes.OK, code)
				second, code = d.login(t, "", acct.email, acct.password, "")
				require.Equal(t, codes.OK, code)
				mine, code = createKey(t, second.GetAccessToken())
				require.Equal(t, codes.OK, code)
			})
			change := func(t *testing.T, keep bool) *authv1.ChangePasswordResponse {
				resp := &authv1.ChangePasswordResponse{}
				next := acct.password + " anew"
				require.Equal(t, codes.OK, d.call(t, "", second.GetAccessToken(), "ChangePassword", &authv1.ChangePasswordRequest{
					CurrentPassword: acct.password, NewPassword: next, KeepOtherSessions: keep,
				}, resp))
				acct.password = next
				return resp
			}
			scenario.Step(t, "a password change may keep the other sessions and their keys", func(t *testing.T) {
				resp := change(t, true)
				require.Zero(t, resp.GetEndedSessions())
				require.Zero(t, resp.GetDeletedApiKeys())
				require.True(t, keyWorks(t, other.GetSecret()))
				require.True(t, b.live(acct.tokens.GetAccessToken()))
			})
			scenario.Step(t, "by default it ends them, and the keys they made", func(t *testing.T) {
				resp := change(t, false)
				require.EqualValues(t, 2, resp.GetEndedSessions(), "the sign-up's and the verification link's")
				require.EqualValues(t, 1, resp.GetDeletedApiKeys())
				require.False(t, keyWorks(t, other.GetSecret()), "the other session's key is deleted")
				require.False(t, b.live(acct.tokens.GetAccessToken()))
				require.True(t, keyWorks(t, mine.GetSecret()), "the caller's own key stays")
				require.True(t, b.live(second.GetAccessToken()))
			})
			scenario.Step(t, "a password reset ends every session and key", func(t *testing.T) {
				_, err := b.srv.ForgotPassword(t.Context(), &authv1.ForgotPasswordRequest{Email: acct.email})
				require.NoError(t, err)
				token := b.mailToken(t, acct.user.GetId(), "reset_password")
				require.Equal(t, codes.OK, d.call(t, "", "", "ResetPassword",
					&authv1.ResetPasswordRequest{Token: token, NewPassword: "the owner's own passphrase"}, &authv1.ResetPasswordResponse{}))
				require.False(t, keyWorks(t, mine.GetSecret()))
				require.False(t, b.live(second.GetAccessToken()))
			})
		})
	}
}

// TestNULIsInvalidArgument: a NUL byte in an email or a name is the client's error,
// refused by the contract's rules before PostgreSQL could fail on it.
func TestNULIsInvalidArgument(t *testing.T) {
	t.Parallel()
	b := setupDoors(t)
	acct := b.signUp(t, uniqueEmail())
	for _, d := range b.doors {
		t.Run(d.name, func(t *testing.T) {
			require.Equal(t, codes.InvalidArgument, d.call(t, "", "", "Login",
				&authv1.LoginRequest{Email: "ada\x00@example.com", Password: "whatever"}, &authv1.LoginResponse{}), "login email")
			require.Equal(t, codes.InvalidArgument, d.call(t, "", "", "ForgotPassword",
				&authv1.ForgotPasswordRequest{Email: "ada\x00@example.com"}, &authv1.ForgotPasswordResponse{}), "forgotten password email")
			require.Equal(t, codes.InvalidArgument, d.call(t, "", "", "SignUp",
				&authv1.SignUpRequest{Email: uniqueEmail(), Password: "a good passphrase", DisplayName: "Ada\x00"}, &authv1.SignUpResponse{}), "sign-up name")
			require.Equal(t, codes.InvalidArgument, d.call(t, "", acct.tokens.GetAccessToken(), "UpdateCurrentUser",
				&authv1.UpdateCurrentUserRequest{User: &authv1.User{DisplayName: "Ada\x00"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name"}}},
				&authv1.UpdateCurrentUserResponse{}), "new name")
			require.Equal(t, codes.InvalidArgument, d.call(t, "", acct.tokens.GetAccessToken(), "CreateApiKey",
				&authv1.CreateApiKeyRequest{DisplayName: "k\x00", Scopes: []string{"profile:read"}}, &authv1.CreateApiKeyResponse{}), "key name")
		})
	}
}

// TestDisplayNamesAreCleanedAndKeptOutOfUnverifiedMail: control and bidi characters never
// reach a stored name, and no name rides on mail to an address nobody has verified.
func TestDisplayNamesAreCleanedAndKeptOutOfUnverifiedMail(t *testing.T) {
	t.Parallel()
	b := setupDoors(t)
	const raw = "Eve\u202e\r\nVisit https://evil.example\u2066 now\t!"
	const clean = "Eve Visit https://evil.example now !"
	for _, d := range b.doors {
		t.Run(d.name, func(t *testing.T) {
			email := uniqueEmail()
			resp := &authv1.SignUpResponse{}
			require.Equal(t, codes.OK, d.call(t, "", "", "SignUp",
				&authv1.SignUpRequest{Email: email, Password: "a good passphrase", DisplayName: raw}, resp))
			require.Equal(t, clean, resp.GetUser().GetDisplayName())
			b.settle(t)
			mails := b.mailer.take(resp.GetUser().GetId(), "verify_email")
			require.Len(t, mails, 1)
			require.NotContains(t, mails[0].Data, "display_name", "no name in mail to an unverified address")
			link, err := url.Parse(mails[0].Data["link"])
			require.NoError(t, err)

			upd := &authv1.UpdateCurrentUserResponse{}
			require.Equal(t, codes.OK, d.call(t, "", resp.GetAccessToken(), "UpdateCurrentUser",
				&authv1.UpdateCurrentUserRequest{User: &authv1.User{DisplayName: "\u202dMallory\x1b[31m"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name"}}}, upd))
			require.Equal(t, "Mallory [31m", upd.GetUser().GetDisplayName())
			require.Equal(t, codes.InvalidArgument, d.call(t, "", resp.GetAccessToken(), "UpdateCurrentUser",
				&authv1.UpdateCurrentUserRequest{User: &authv1.User{DisplayName: "\u202e\r\n"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name"}}}, upd),
				"nothing left of it")

			_, err = b.srv.VerifyEmail(t.Context(), &authv1.VerifyEmailRequest{Token: link.Query().Get("token")})
			require.NoError(t, err)
			_, err = b.srv.ForgotPassword(t.Context(), &authv1.ForgotPasswordRequest{Email: email})
			require.NoError(t, err)
			b.settle(t)
			mails = b.mailer.take(resp.GetUser().GetId(), "reset_password")
			require.Len(t, mails, 1)
			require.Equal(t, "Mallory [31m", mails[0].Data["display_name"], "a verified address gets the cleaned name")
		})
	}
}
