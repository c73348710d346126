package auth

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/internal/scenario"
	"github.com/backplane/backplane/services/auth/password"
)

func verifyMode(c *Config, _ *wiring) { c.SignupMode = SignupVerify }

// In the default mode, sign-up answers a new and a taken address alike, with no tokens
// and the same password work; the emails say which it was, and the verification link
// signs in.
func TestSignUpRevealsNoAccount(t *testing.T) {
	t.Parallel()
	var hashed atomic.Int64
	hasher, err := password.NewHasher(t.Context(), password.Params{Memory: 64, Time: 1, Threads: 1}, 4,
		password.WithComputeHook(func(context.Context) { hashed.Add(1) }))
	require.NoError(t, err)
	b := setup(t, verifyMode, func(_ *Config, w *wiring) { w.hasher = hasher })
	ctx := context.Background()
	email := uniqueEmail()
	req := &authv1.SignUpRequest{Email: email, Password: "correct horse battery", DisplayName: "Ada"}
	var first *authv1.SignUpResponse
	var userID string

	scenario.Step(t, "a new address: check your email, no tokens", func(t *testing.T) {
		hashed.Store(0)
		first, err = b.srv.SignUp(ctx, req)
		require.NoError(t, err)
		require.True(t, first.GetEmailVerificationRequired())
		require.Empty(t, first.GetAccessToken())
		require.Empty(t, first.GetRefreshToken())
		require.Nil(t, first.GetUser(), "naming the account would differ from a taken address's answer")
		require.EqualValues(t, 1, hashed.Load())
		require.NoError(t, b.pool.QueryRow(ctx, "SELECT id::text FROM users WHERE email = $1", email).Scan(&userID))
	})
	scenario.Step(t, "it is sent the verification link", func(t *testing.T) {
		b.settle(t)
		require.Len(t, b.mailer.take(userID, "verify_email"), 1)
	})
	scenario.Step(t, "a taken address: the same answer, after the same password work", func(t *testing.T) {
		hashed.Store(0)
		again, err := b.srv.SignUp(ctx, &authv1.SignUpRequest{Email: email, Password: "another horse battery", DisplayName: "Eve"})
		require.NoError(t, err)
		require.True(t, proto.Equal(first, again), "%v != %v", first, again)
		require.EqualValues(t, 1, hashed.Load(), "the password is hashed as for a new address")
		var n int
		require.NoError(t, b.pool.QueryRow(ctx, "SELECT count(*) FROM users WHERE email = $1", email).Scan(&n))
		require.Equal(t, 1, n)
	})
	scenario.Step(t, "the owner is told someone tried, and sent no link", func(t *testing.T) {
		b.settle(t)
		require.Len(t, b.mailer.take(userID, "signup_attempt"), 1)
		require.Empty(t, b.mailer.take(userID, "verify_email"), "only the first sign-up was sent one")
	})
	scenario.Step(t, "the notes are throttled per address", func(t *testing.T) {
		for range mailsPerHour + 2 {
			_, err := b.srv.SignUp(ctx, req)
			require.NoError(t, err)
		}
		b.settle(t)
		// Every sign-up of the address counts, the first one's too.
		require.Len(t, b.mailer.take(userID, "signup_attempt"), mailsPerHour-2)
	})
}

func TestTheVerificationLinkSignsIn(t *testing.T) {
	t.Parallel()
	b := setup(t, verifyMode)
	ctx := context.Background()
	email := uniqueEmail()
	_, err := b.srv.SignUp(ctx, &authv1.SignUpRequest{Email: email, Password: "correct horse battery", DisplayName: "Ada"})
	require.NoError(t, err)
	u, err := b.srv.store.userByEmail(ctx, email)
	require.NoError(t, err)

	resp, err := b.srv.VerifyEmail(ctx, &authv1.VerifyEmailRequest{Token: b.mailToken(t, u.ID.String(), "verify_email")})
	require.NoError(t, err)
	require.True(t, resp.GetUser().GetEmailVerified())
	require.Equal(t, "Bearer", resp.GetTokenType())
	require.EqualValues(t, 900, resp.GetExpiresIn())
	require.Len(t, resp.GetRefreshToken(), 43)
	me, err := b.srv.GetCurrentUser(b.as(t, resp.GetAccessToken()), &authv1.GetCurrentUserRequest{})
	require.NoError(t, err)
	require.Equal(t, email, me.GetUser().GetEmail())
	b.settle(t)
	require.Empty(t, b.mailer.take(u.ID.String(), "new_sign_in"), "the owner just proved the address")

	_, err = b.srv.VerifyEmail(ctx, &authv1.VerifyEmailRequest{Token: "spent-or-not-a-token"})
	require.Equal(t, fault.InvalidArgument, fault.KindOf(err))
}

func TestInstantSignUpSignsInAndRevealsTakenAddresses(t *testing.T) {
	t.Parallel()
	b := setup(t)
	acct := b.signUp(t, uniqueEmail())
	require.True(t, b.live(acct.tokens.GetAccessToken()))
	_, err := b.srv.SignUp(context.Background(), &authv1.SignUpRequest{Email: acct.email, Password: "correct horse battery", DisplayName: "Eve"})
	require.Equal(t, fault.AlreadyExists, fault.KindOf(err))
}

// The "new sign-in" email goes out only when neither the device is trusted nor the
// client (user-agent family and network) has signed in to the account before.
func TestNewSignInEmailOnlyForANewClient(t *testing.T) {
	t.Parallel()
	b := setup(t)
	acct := b.signUp(t, uniqueEmail())
	login := func(t *testing.T, ctx context.Context, device string) (*authv1.LoginResponse, int) {
		t.Helper()
		resp, err := b.srv.Login(ctx, &authv1.LoginRequest{Email: acct.email, Password: acct.password, DeviceToken: device})
		require.NoError(t, err)
		b.settle(t)
		return resp, len(b.mailer.take(acct.user.GetId(), "new_sign_in"))
	}
	const chrome130 = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"
	const chrome131 = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	var device string

	scenario.Step(t, "a new browser on a new network", func(t *testing.T) {
		resp, mails := login(t, from("203.0.113.10", chrome130), "")
		require.Equal(t, 1, mails)
		device = resp.GetDeviceToken()
	})
	scenario.Step(t, "the same browser, updated, on the same network, without its device token", func(t *testing.T) {
		_, mails := login(t, from("203.0.113.77", chrome131), "")
		require.Zero(t, mails, "same family, same /24")
	})
	scenario.Step(t, "the trusted device on a new network", func(t *testing.T) {
		_, mails := login(t, from("198.51.100.3", chrome131), device)
		require.Zero(t, mails, "the device presented its token")
	})
	scenario.Step(t, "another browser on a known network", func(t *testing.T) {
		_, mails := login(t, from("203.0.113.10", firefox), "")
		require.Equal(t, 1, mails, "a new user-agent family")
	})
	scenario.Step(t, "a known browser on a new network, untrusted", func(t *testing.T) {
		_, mails := login(t, from("192.0.2.44", chrome130), "")
		require.Equal(t, 1, mails, "a new network")
	})
	scenario.Step(t, "a device token of another account is no trust", func(t *testing.T) {
		other := b.signUp(t, uniqueEmail())
		resp, err := b.srv.Login(from("203.0.113.10", chrome130), &authv1.LoginRequest{Email: other.email, Password: other.password})
		require.NoError(t, err)
		_, mails := login(t, from("100.64.0.1", chrome130), resp.GetDeviceToken())
		require.Equal(t, 1, mails)
	})
}

func TestFingerprintParts(t *testing.T) {
	t.Parallel()
	require.Equal(t, "203.0.113.0/24", network("203.0.113.77"))
	require.Equal(t, "203.0.113.0/24", network("::ffff:203.0.113.77"))
	require.Equal(t, "2001:db8:1::/48", network("2001:db8:1:2::5"))
	require.Equal(t, "not-an-ip", network("not-an-ip"))
	require.Equal(t, "curl", userAgentFamily("curl/8.5.0"))
	require.Equal(t, userAgentFamily(firefox), userAgentFamily("Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"))
	require.NotEqual(t, userAgentFamily(firefox), userAgentFamily("curl/8.5.0"))
}

// A security email is a job committed with its cause: a replica killed right after
// answering (its job client never runs) loses none, and another replica sends it.
func TestSecurityEmailsOutliveTheReplicaThatQueuedThem(t *testing.T) {
	t.Parallel()
	dead := setupIdle(t)
	ctx := context.Background()
	acct := dead.signUp(t, uniqueEmail())
	_, err := dead.srv.ChangePassword(dead.as(t, acct.tokens.GetAccessToken()), &authv1.ChangePasswordRequest{
		CurrentPassword: acct.password, NewPassword: acct.password + " anew", KeepOtherSessions: true,
	})
	require.NoError(t, err)
	require.Empty(t, dead.mailer.take(acct.user.GetId(), "verify_email"), "nothing was sent: the replica died")

	var queued []string
	rows, err := dead.pool.Query(ctx, `SELECT args->>'template' FROM auth_river.river_job WHERE kind = 'auth_security_email' AND args->>'user_id' = $1 ORDER BY id`, acct.user.GetId())
	require.NoError(t, err)
	for rows.Next() {
		var tmpl string
		require.NoError(t, rows.Scan(&tmpl))
		queued = append(queued, tmpl)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"verify_email", "password_changed"}, queued, "each email is a job, committed with its cause")

	// Another replica, on the same database, with an edge of its own.
	live := &testBundle{cfg: dead.cfg, deps: dead.deps, pool: dead.pool, rdb: dead.rdb, prefix: dead.prefix, mailer: &recordingNotifier{}}
	live.srv, err = newServer(ctx, live.cfg, live.deps, wiring{notifier: live.mailer, hasher: cheapHasher(t), redisPrefix: live.prefix})
	require.NoError(t, err)
	live.startJobs(t)
	live.settle(t)
	require.Len(t, live.mailer.take(acct.user.GetId(), "verify_email"), 1)
	require.Len(t, live.mailer.take(acct.user.GetId(), "password_changed"), 1)
}

// A change that is rolled back queues nothing: the email and its cause commit together.
func TestARolledBackChangeQueuesNoEmail(t *testing.T) {
	t.Parallel()
	b := setupIdle(t)
	ctx := context.Background()
	acct := b.signUp(t, uniqueEmail())
	_, err := b.srv.SignUp(ctx, &authv1.SignUpRequest{Email: acct.email, Password: "correct horse battery", DisplayName: "Eve"})
	require.Equal(t, fault.AlreadyExists, fault.KindOf(err))
	var n int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM auth_river.river_job WHERE kind = 'auth_security_email'`).Scan(&n))
	require.Equal(t, 1, n, "only the first sign-up's verification email")
}
