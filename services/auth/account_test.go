package auth

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/internal/scenario"
	"github.com/backplane/backplane/services/auth/password"
)

func TestSignUp(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	email := uniqueEmail()
	var acct account

	scenario.Step(t, "sign up", func(t *testing.T) {
		acct = b.signUp(t, strings.ToUpper(email))
		require.Equal(t, email, acct.user.GetEmail(), "stored lower-cased")
		require.False(t, acct.user.GetEmailVerified())
		require.Equal(t, []authv1.Role{authv1.Role_ROLE_USER}, acct.user.GetRoles())
		require.Equal(t, "Bearer", acct.tokens.GetTokenType())
		require.EqualValues(t, 900, acct.tokens.GetExpiresIn())
		require.True(t, b.live(acct.tokens.GetAccessToken()))
	})
	scenario.Step(t, "a verification email is sent", func(t *testing.T) {
		b.settle(t)
		mails := b.mailer.take(acct.user.GetId(), "verify_email")
		require.Len(t, mails, 1)
		require.True(t, strings.HasPrefix(mails[0].Data["link"], "https://app.backplane.test/verify-email?token="))
		require.NotEmpty(t, mails[0].IdempotencyKey)
	})
	// The password is stored as an argon2id PHC string, never in clear.
	scenario.Step(t, "the password is stored hashed", func(t *testing.T) {
		var hash string
		require.NoError(t, b.pool.QueryRow(ctx, "SELECT password_hash FROM users WHERE email = $1", email).Scan(&hash))
		require.True(t, strings.HasPrefix(hash, "$argon2id$"))
		require.NotContains(t, hash, acct.password)
	})
	scenario.Step(t, "a taken email is refused", func(t *testing.T) {
		_, err := b.srv.SignUp(ctx, &authv1.SignUpRequest{Email: email, Password: "another good passphrase", DisplayName: "X"})
		require.Equal(t, fault.AlreadyExists, fault.KindOf(err), "a taken email answers 409")
	})
	scenario.Step(t, "a common password is refused", func(t *testing.T) {
		_, err := b.srv.SignUp(ctx, &authv1.SignUpRequest{Email: uniqueEmail(), Password: "Password123", DisplayName: "X"})
		require.Equal(t, fault.InvalidArgument, fault.KindOf(err), "common passwords are refused")
		require.ErrorContains(t, err, password.ErrCommon.Error())
	})
}

func TestLogin(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	acct := b.signUp(t, uniqueEmail())
	var resp *authv1.LoginResponse

	scenario.Step(t, "log in", func(t *testing.T) {
		var err error
		resp, err = b.srv.Login(ctx, &authv1.LoginRequest{Email: strings.ToUpper(acct.email), Password: acct.password})
		require.NoError(t, err)
		require.Equal(t, "Bearer", resp.GetTokenType())
		require.Equal(t, acct.user.GetId(), resp.GetUser().GetId())
		require.True(t, b.live(resp.GetAccessToken()))
		require.Len(t, resp.GetRefreshToken(), 43, "256 bits, base64url")
	})
	scenario.Step(t, "a sign-in from the client that signed up is not announced", func(t *testing.T) {
		b.settle(t)
		require.Empty(t, b.mailer.take(acct.user.GetId(), "new_sign_in"))
	})
	scenario.Step(t, "a sign-in from a new client is", func(t *testing.T) {
		_, err := b.srv.Login(from("198.51.100.7", firefox), &authv1.LoginRequest{Email: acct.email, Password: acct.password})
		require.NoError(t, err)
		b.settle(t)
		mails := b.mailer.take(acct.user.GetId(), "new_sign_in")
		require.Len(t, mails, 1)
		require.Equal(t, "198.51.100.7", mails[0].Data["ip_address"])
	})
	scenario.Step(t, "the refresh token is stored only as a hash", func(t *testing.T) {
		var n int
		require.NoError(t, b.pool.QueryRow(ctx, "SELECT count(*) FROM refresh_tokens WHERE token_hash = $1", digest(resp.GetRefreshToken())).Scan(&n))
		require.Equal(t, 1, n)
		require.NoError(t, b.pool.QueryRow(ctx, "SELECT count(*) FROM refresh_tokens WHERE token_hash = convert_to($1, 'UTF8')", resp.GetRefreshToken()).Scan(&n))
		require.Zero(t, n)
	})
}

func TestLoginIsEnumerationSafe(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	acct := b.signUp(t, uniqueEmail())

	_, wrongPassword := b.srv.Login(ctx, &authv1.LoginRequest{Email: acct.email, Password: "not the password"})
	_, unknownEmail := b.srv.Login(ctx, &authv1.LoginRequest{Email: uniqueEmail(), Password: "not the password"})
	require.Equal(t, fault.Unauthenticated, fault.KindOf(wrongPassword))
	require.Equal(t, fault.Status(wrongPassword).Proto(), fault.Status(unknownEmail).Proto(), "same status and body")
}

// TestLoginWorkIsEnumerationSafe counts argon2id computations instead of timing them:
// an unknown email must cost a hash comparison, exactly as a wrong password does, so the
// two cannot be told apart by how long they take.
func TestLoginWorkIsEnumerationSafe(t *testing.T) {
	t.Parallel()
	var computed atomic.Int64
	hasher, err := password.NewHasher(t.Context(), password.Params{Memory: 64, Time: 1, Threads: 1}, 4,
		password.WithComputeHook(func(context.Context) { computed.Add(1) }))
	require.NoError(t, err)
	b := setup(t, func(c *Config, w *wiring) { w.hasher = hasher; c.LoginMaxFailures = 100 })
	ctx := context.Background()
	acct := b.signUp(t, uniqueEmail())

	cost := func(email string) int64 {
		before := computed.Load()
		_, err := b.srv.Login(ctx, &authv1.LoginRequest{Email: email, Password: "not the password"})
		require.Equal(t, fault.Unauthenticated, fault.KindOf(err))
		return computed.Load() - before
	}
	require.EqualValues(t, 1, cost(acct.email), "a wrong password costs one comparison")
	require.EqualValues(t, 1, cost(uniqueEmail()), "and so does an unknown email")
}

func TestLoginLockout(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	acct := b.signUp(t, uniqueEmail())
	other := b.signUp(t, uniqueEmail())

	scenario.Step(t, "failures lock the account, even for the right password", func(t *testing.T) {
		for range b.cfg.LoginMaxFailures {
			_, err := b.srv.Login(ctx, &authv1.LoginRequest{Email: acct.email, Password: "wrong password"})
			require.Equal(t, fault.Unauthenticated, fault.KindOf(err))
		}
		// Locked: even the right password waits for the window.
		_, err := b.srv.Login(ctx, &authv1.LoginRequest{Email: acct.email, Password: acct.password})
		require.Equal(t, fault.ResourceExhausted, fault.KindOf(err))
		var fe *fault.Error
		require.ErrorAs(t, err, &fe)
		require.Len(t, fe.Details, 1)
		info, ok := fe.Details[0].(*errdetails.RetryInfo)
		require.True(t, ok)
		delay := info.GetRetryDelay().AsDuration()
		require.Greater(t, delay, 14*time.Minute)
		require.LessOrEqual(t, delay, 15*time.Minute)
	})
	// Unknown accounts lock the same way, so lockout reveals nothing either.
	scenario.Step(t, "unknown accounts lock the same way", func(t *testing.T) {
		ghost := uniqueEmail()
		for range b.cfg.LoginMaxFailures {
			_, err := b.srv.Login(ctx, &authv1.LoginRequest{Email: ghost, Password: "wrong password"})
			require.Equal(t, fault.Unauthenticated, fault.KindOf(err))
		}
		_, err := b.srv.Login(ctx, &authv1.LoginRequest{Email: ghost, Password: "wrong password"})
		require.Equal(t, fault.ResourceExhausted, fault.KindOf(err))
	})
	scenario.Step(t, "another account is unaffected", func(t *testing.T) {
		_, err := b.srv.Login(ctx, &authv1.LoginRequest{Email: other.email, Password: other.password})
		require.NoError(t, err)
	})
	scenario.Step(t, "when the window has passed, the account may try again", func(t *testing.T) {
		// The window's end, as Redis sees it: the counts expire.
		for _, pattern := range []string{"auth:login:acct:*", "auth:login:pair:*"} {
			keys, err := b.rdb.Keys(ctx, b.prefix+pattern).Result()
			require.NoError(t, err)
			require.NoError(t, b.rdb.Del(ctx, keys...).Err())
		}
		_, err := b.srv.Login(ctx, &authv1.LoginRequest{Email: acct.email, Password: acct.password})
		require.NoError(t, err)
	})
}

func TestUpdateCurrentUserWritesOnlyProfileFields(t *testing.T) {
	t.Parallel()
	b := setup(t)
	acct := b.signUp(t, uniqueEmail())
	ctx := b.as(t, acct.tokens.GetAccessToken())

	scenario.Step(t, "a mask naming a protected field is refused outright", func(t *testing.T) {
		for _, path := range []string{"roles", "email", "email_verified", "id", "disabled"} {
			_, err := b.srv.UpdateCurrentUser(ctx, &authv1.UpdateCurrentUserRequest{
				User:       &authv1.User{DisplayName: "x", Roles: []authv1.Role{authv1.Role_ROLE_ADMIN}, Email: "boss@example.com"},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name", path}},
			})
			require.Equal(t, fault.InvalidArgument, fault.KindOf(err), path)
		}
	})
	scenario.Step(t, "without a mask, only the display name is written", func(t *testing.T) {
		resp, err := b.srv.UpdateCurrentUser(ctx, &authv1.UpdateCurrentUserRequest{User: &authv1.User{
			Id: "00000000-0000-0000-0000-000000000001", DisplayName: "New Name", Email: "boss@example.com",
			EmailVerified: true, Roles: []authv1.Role{authv1.Role_ROLE_ADMIN}, Disabled: true,
		}})
		require.NoError(t, err)
		got := resp.GetUser()
		require.Equal(t, "New Name", got.GetDisplayName())
		require.Equal(t, acct.user.GetId(), got.GetId())
		require.Equal(t, acct.email, got.GetEmail())
		require.False(t, got.GetEmailVerified())
		require.False(t, got.GetDisabled())
		require.Equal(t, []authv1.Role{authv1.Role_ROLE_USER}, got.GetRoles())
	})
	scenario.Step(t, "the change is what the user reads back", func(t *testing.T) {
		me, err := b.srv.GetCurrentUser(ctx, &authv1.GetCurrentUserRequest{})
		require.NoError(t, err)
		require.Equal(t, "New Name", me.GetUser().GetDisplayName())
		require.Equal(t, []authv1.Role{authv1.Role_ROLE_USER}, me.GetUser().GetRoles())
	})
}
