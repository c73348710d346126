package auth

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/internal/scenario"
)

func TestVerifyEmail(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	acct := b.signUp(t, uniqueEmail())
	var token string

	scenario.Step(t, "the link lives a day", func(t *testing.T) {
		token = b.mailToken(t, acct.user.GetId(), "verify_email")
		var ttl float64
		require.NoError(t, b.pool.QueryRow(ctx, "SELECT extract(epoch FROM expire_time - create_time) FROM email_tokens WHERE kind = 'verify_email'").Scan(&ttl))
		require.InDelta(t, 24*3600, ttl, 5, "verification links live a day")
	})
	scenario.Step(t, "verify", func(t *testing.T) {
		resp, err := b.srv.VerifyEmail(ctx, &authv1.VerifyEmailRequest{Token: token})
		require.NoError(t, err)
		require.True(t, resp.GetUser().GetEmailVerified())
	})
	scenario.Step(t, "the token is single use, and a forged one fails", func(t *testing.T) {
		_, err := b.srv.VerifyEmail(ctx, &authv1.VerifyEmailRequest{Token: token})
		require.Equal(t, fault.InvalidArgument, fault.KindOf(err), "single use")
		_, err = b.srv.VerifyEmail(ctx, &authv1.VerifyEmailRequest{Token: "forged"})
		require.Equal(t, fault.InvalidArgument, fault.KindOf(err))
	})
	scenario.Step(t, "a verified address gets no new link", func(t *testing.T) {
		_, err := b.srv.ResendVerificationEmail(b.as(t, acct.tokens.GetAccessToken()), &authv1.ResendVerificationEmailRequest{})
		require.Equal(t, fault.FailedPrecondition, fault.KindOf(err))
	})
}

func TestVerificationLinksExpireAndResendReplacesThem(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	acct := b.signUp(t, uniqueEmail())
	first := b.mailToken(t, acct.user.GetId(), "verify_email")
	me := b.as(t, acct.tokens.GetAccessToken())
	var second string

	scenario.Step(t, "resending invalidates the earlier link", func(t *testing.T) {
		_, err := b.srv.ResendVerificationEmail(me, &authv1.ResendVerificationEmailRequest{})
		require.NoError(t, err)
		second = b.mailToken(t, acct.user.GetId(), "verify_email")
		_, err = b.srv.VerifyEmail(ctx, &authv1.VerifyEmailRequest{Token: first})
		require.Equal(t, fault.InvalidArgument, fault.KindOf(err))
	})
	scenario.Step(t, "an expired link fails", func(t *testing.T) {
		_, err := b.pool.Exec(ctx, "UPDATE email_tokens SET expire_time = now() - interval '1 second' WHERE use_time IS NULL")
		require.NoError(t, err)
		_, err = b.srv.VerifyEmail(ctx, &authv1.VerifyEmailRequest{Token: second})
		require.Equal(t, fault.InvalidArgument, fault.KindOf(err))
	})
	scenario.Step(t, "resending is throttled", func(t *testing.T) {
		for range mailsPerHour - 1 {
			_, err := b.srv.ResendVerificationEmail(me, &authv1.ResendVerificationEmailRequest{})
			require.NoError(t, err)
		}
		_, err := b.srv.ResendVerificationEmail(me, &authv1.ResendVerificationEmailRequest{})
		require.Equal(t, fault.ResourceExhausted, fault.KindOf(err))
	})
}

func TestAdminRoleNeedsAVerifiedListedEmail(t *testing.T) {
	t.Parallel()
	b := setup(t)
	boss := b.signUp(t, "Boss@Example.com")

	scenario.Step(t, "not before verification", func(t *testing.T) {
		require.Equal(t, []authv1.Role{authv1.Role_ROLE_USER}, boss.user.GetRoles())
	})
	scenario.Step(t, "verification grants the role", func(t *testing.T) {
		resp, err := b.srv.VerifyEmail(context.Background(), &authv1.VerifyEmailRequest{Token: b.mailToken(t, boss.user.GetId(), "verify_email")})
		require.NoError(t, err)
		require.Equal(t, []authv1.Role{authv1.Role_ROLE_USER, authv1.Role_ROLE_ADMIN}, resp.GetUser().GetRoles())
	})
	scenario.Step(t, "the next token carries it", func(t *testing.T) {
		login, err := b.srv.Login(context.Background(), &authv1.LoginRequest{Email: boss.email, Password: boss.password})
		require.NoError(t, err)
		p, err := b.srv.Verifier().Verify(context.Background(), login.GetAccessToken())
		require.NoError(t, err)
		require.True(t, p.HasRole("admin"))
	})
}

func TestForgotAndResetPassword(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	acct := b.signUp(t, uniqueEmail())
	other, err := b.srv.Login(ctx, &authv1.LoginRequest{Email: acct.email, Password: acct.password})
	require.NoError(t, err)
	const newPassword = "a brand new passphrase"
	var token string

	// The same answer whether or not the account exists; mail only for the real one.
	scenario.Step(t, "forgot: the same answer, mail only for a real account", func(t *testing.T) {
		_, err := b.srv.ForgotPassword(ctx, &authv1.ForgotPasswordRequest{Email: uniqueEmail()})
		require.NoError(t, err)
		_, err = b.srv.ForgotPassword(ctx, &authv1.ForgotPasswordRequest{Email: acct.email})
		require.NoError(t, err)
		b.settle(t)
		b.mailer.mu.Lock()
		var resets int
		for _, m := range b.mailer.sent {
			if m.Template == "reset_password" {
				resets++
			}
		}
		b.mailer.mu.Unlock()
		require.Equal(t, 1, resets)
		token = b.mailToken(t, acct.user.GetId(), "reset_password")
	})
	scenario.Step(t, "the password policy applies", func(t *testing.T) {
		_, err := b.srv.ResetPassword(ctx, &authv1.ResetPasswordRequest{Token: token, NewPassword: "password1"})
		require.Equal(t, fault.InvalidArgument, fault.KindOf(err), "policy applies")
	})
	scenario.Step(t, "reset ends every session", func(t *testing.T) {
		_, err := b.srv.ResetPassword(ctx, &authv1.ResetPasswordRequest{Token: token, NewPassword: newPassword})
		require.NoError(t, err, "a refused password does not spend the token")
		require.False(t, b.live(acct.tokens.GetAccessToken()), "every session ends")
		require.False(t, b.live(other.GetAccessToken()))
		_, err = refresh(b, other.GetRefreshToken())
		require.Equal(t, fault.Unauthenticated, fault.KindOf(err))
	})
	scenario.Step(t, "the link is single use", func(t *testing.T) {
		_, err := b.srv.ResetPassword(ctx, &authv1.ResetPasswordRequest{Token: token, NewPassword: "yet another passphrase"})
		require.Equal(t, fault.InvalidArgument, fault.KindOf(err), "single use")
	})
	scenario.Step(t, "only the new password logs in, and the change is announced", func(t *testing.T) {
		_, err := b.srv.Login(ctx, &authv1.LoginRequest{Email: acct.email, Password: acct.password})
		require.Equal(t, fault.Unauthenticated, fault.KindOf(err))
		_, err = b.srv.Login(ctx, &authv1.LoginRequest{Email: acct.email, Password: newPassword})
		require.NoError(t, err)
		b.settle(t)
		require.Len(t, b.mailer.take(acct.user.GetId(), "password_changed"), 1)
	})
}

func TestResetLinksExpire(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	acct := b.signUp(t, uniqueEmail())
	_, err := b.srv.ForgotPassword(ctx, &authv1.ForgotPasswordRequest{Email: acct.email})
	require.NoError(t, err)
	token := b.mailToken(t, acct.user.GetId(), "reset_password")

	var ttl float64
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT extract(epoch FROM expire_time - create_time) FROM email_tokens WHERE kind = 'reset_password'").Scan(&ttl))
	require.InDelta(t, 3600, ttl, 5, "reset links live an hour")

	_, err = b.pool.Exec(ctx, "UPDATE email_tokens SET expire_time = now() - interval '1 second'")
	require.NoError(t, err)
	_, err = b.srv.ResetPassword(ctx, &authv1.ResetPasswordRequest{Token: token, NewPassword: "a brand new passphrase"})
	require.Equal(t, fault.InvalidArgument, fault.KindOf(err))
}

func TestChangePassword(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	acct := b.signUp(t, uniqueEmail())
	other, err := b.srv.Login(ctx, &authv1.LoginRequest{Email: acct.email, Password: acct.password})
	require.NoError(t, err)
	me := b.as(t, acct.tokens.GetAccessToken())

	scenario.Step(t, "a wrong current password or a weak new one is refused", func(t *testing.T) {
		_, err := b.srv.ChangePassword(me, &authv1.ChangePasswordRequest{CurrentPassword: "wrong", NewPassword: "a brand new passphrase"})
		require.Equal(t, fault.InvalidArgument, fault.KindOf(err))
		_, err = b.srv.ChangePassword(me, &authv1.ChangePasswordRequest{CurrentPassword: acct.password, NewPassword: "qwerty123"})
		require.Equal(t, fault.InvalidArgument, fault.KindOf(err))
	})
	scenario.Step(t, "change: the caller's session stays, the others end", func(t *testing.T) {
		_, err := b.srv.ChangePassword(me, &authv1.ChangePasswordRequest{CurrentPassword: acct.password, NewPassword: "a brand new passphrase"})
		require.NoError(t, err)
		require.True(t, b.live(acct.tokens.GetAccessToken()), "the caller's session stays")
		require.False(t, b.live(other.GetAccessToken()), "the others end")
	})
	scenario.Step(t, "the new password logs in", func(t *testing.T) {
		_, err := b.srv.Login(ctx, &authv1.LoginRequest{Email: acct.email, Password: "a brand new passphrase"})
		require.NoError(t, err)
	})
}

func TestForgotPasswordIsThrottledSilently(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	acct := b.signUp(t, uniqueEmail())
	for range mailsPerHour + 2 {
		_, err := b.srv.ForgotPassword(ctx, &authv1.ForgotPasswordRequest{Email: acct.email})
		require.NoError(t, err, "the answer never changes")
	}
	b.settle(t)
	require.Len(t, b.mailer.take(acct.user.GetId(), "reset_password"), mailsPerHour)
}
