package auth

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/config"
	"github.com/backplane/backplane/internal/dbtest"
	"github.com/backplane/backplane/internal/identity"
	"github.com/backplane/backplane/internal/jobs"
	"github.com/backplane/backplane/internal/redistest"
	"github.com/backplane/backplane/internal/service"
	"github.com/backplane/backplane/services/auth/password"
)

// recordingNotifier stands in for the notification service, the one true edge here.
type recordingNotifier struct {
	mu   sync.Mutex
	sent []securityEmail
}

func (m *recordingNotifier) Send(_ context.Context, mail securityEmail) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, mail)
	return nil
}

// take returns and forgets the mails of one template sent to a user.
func (m *recordingNotifier) take(userID, template string) []securityEmail {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out, keep []securityEmail
	for _, s := range m.sent {
		if s.UserID == userID && s.Template == template {
			out = append(out, s)
		} else {
			keep = append(keep, s)
		}
	}
	m.sent = keep
	return out
}

type testBundle struct {
	srv    *Server
	cfg    Config
	deps   service.Deps
	pool   *pgxpool.Pool
	rdb    redis.UniversalClient
	prefix string
	mailer *recordingNotifier
}

// testPublicURL is where the test product is served; it also issues the tokens.
const testPublicURL = "https://app.backplane.test"

// cheapHasher keeps most tests fast; the password package tests the production
// parameters, and TestLoginWorkIsEnumerationSafe counts the comparisons a login costs.
func cheapHasher(t testing.TB) *password.Hasher {
	h, err := password.NewHasher(t.Context(), password.Params{Memory: 64, Time: 1, Threads: 1}, 4)
	require.NoError(t, err)
	return h
}

// testServiceTokenSecret signs the service tokens of tests that call INTERNAL RPCs.
const testServiceTokenSecret = "0123456789abcdef0123456789abcdef"

func testConfig(t testing.TB) Config {
	t.Helper()
	cfg, err := LoadConfig(config.NewEnv(func(k string) string {
		switch k {
		case "BACKPLANE_ADMIN_EMAILS":
			return "boss@example.com"
		case "BACKPLANE_SIGNUP_MODE":
			// Most tests need a signed-in account at once; signup_test.go tests the
			// default, verify.
			return "instant"
		}
		return ""
	}))
	require.NoError(t, err)
	return cfg
}

type option func(*Config, *wiring)

func setup(t testing.TB, opts ...option) *testBundle {
	t.Helper()
	b := setupIdle(t, opts...)
	b.startJobs(t)
	return b
}

// startJobs starts the server's job client, which sends the emails queued.
func (b *testBundle) startJobs(t testing.TB) {
	t.Helper()
	require.NoError(t, b.srv.jobs.Start(t.Context()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.srv.jobs.Stop(ctx)
	})
}

// setupIdle is setup without starting the job client: as a replica that was killed
// right after answering, it queues emails and sends none.
func setupIdle(t testing.TB, opts ...option) *testBundle {
	t.Helper()
	b := &testBundle{
		cfg:    testConfig(t),
		pool:   newTestPool(t),
		rdb:    redistest.Client(t),
		prefix: "auth-test:" + rand.Text() + ":",
		mailer: &recordingNotifier{},
	}
	b.deps = service.Deps{
		Logger: slog.New(slog.DiscardHandler), DB: b.pool, Redis: b.rdb,
		PublicURL: testPublicURL, Issuer: testPublicURL,
	}
	w := wiring{notifier: b.mailer, hasher: cheapHasher(t), redisPrefix: b.prefix}
	t.Cleanup(func() { deleteKeys(b.rdb, b.prefix) })
	for _, o := range opts {
		o(&b.cfg, &w)
	}
	var err error
	b.srv, err = newServer(context.Background(), b.cfg, b.deps, w)
	require.NoError(t, err)
	return b
}

// firefox is a browser's User-Agent, for sign-ins from a client of its own.
const firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"

// from is a call from the client at ip with the User-Agent ua, as the edge relays it.
func from(ip, ua string) context.Context {
	ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000}})
	return metadata.NewIncomingContext(ctx, metadata.Pairs("user-agent", ua))
}

// newTestPool is a database migrated as `backplane migrate` leaves auth's: its tables and
// its River schema.
func newTestPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return dbtest.NewPool(t, "auth", migrations(),
		dbtest.WithStep(fmt.Sprintf("river migration %d", jobs.SchemaVersion()), func(ctx context.Context, pool *pgxpool.Pool) error {
			_, err := jobs.Migrate(ctx, pool, "auth", nil)
			return err
		}))
}

// settle waits until every job the service queued so far has been worked, so that the
// emails they send are in the mailer, and none is left to come.
func (b *testBundle) settle(t testing.TB) {
	t.Helper()
	require.Eventually(t, func() bool {
		var n int
		err := b.pool.QueryRow(context.Background(),
			`SELECT count(*) FROM auth_river.river_job WHERE state NOT IN ('completed', 'discarded', 'cancelled')`).Scan(&n)
		return err == nil && n == 0
	}, 15*time.Second, 5*time.Millisecond, "the service's jobs were not all worked")
}

// account is a signed-up user and their first session.
type account struct {
	user     *authv1.User
	email    string
	password string
	// tokens are the four token fields every sign-in answers with.
	tokens *authv1.RefreshTokenResponse
}

func (b *testBundle) signUp(t testing.TB, email string) account {
	t.Helper()
	pw := "correct horse " + rand.Text()
	resp, err := b.srv.SignUp(context.Background(), &authv1.SignUpRequest{Email: email, Password: pw, DisplayName: "Test User"})
	require.NoError(t, err)
	require.False(t, resp.GetEmailVerificationRequired(), "setup signs up in instant mode; verify mode has tests of its own")
	return account{user: resp.GetUser(), email: strings.ToLower(email), password: pw, tokens: &authv1.RefreshTokenResponse{
		AccessToken: resp.GetAccessToken(), RefreshToken: resp.GetRefreshToken(), TokenType: resp.GetTokenType(), ExpiresIn: resp.GetExpiresIn(),
	}}
}

// verify verifies an account's address through the emailed link, as its owner does.
func (b *testBundle) verify(t testing.TB, a account) account {
	t.Helper()
	resp, err := b.srv.VerifyEmail(context.Background(), &authv1.VerifyEmailRequest{Token: b.mailToken(t, a.user.GetId(), "verify_email")})
	require.NoError(t, err)
	a.user = resp.GetUser()
	return a
}

// as returns a context authenticated the way the interceptor does it: by verifying the
// access token.
func (b *testBundle) as(t testing.TB, accessToken string) context.Context {
	t.Helper()
	p, err := b.srv.Verifier().Verify(context.Background(), accessToken)
	require.NoError(t, err)
	return identity.WithPrincipal(context.Background(), p)
}

// live reports whether an access token still passes the edge's check.
func (b *testBundle) live(accessToken string) bool {
	_, err := b.srv.Verifier().Verify(context.Background(), accessToken)
	return err == nil
}

// mailToken pulls the token out of the link in the one email of a template.
func (b *testBundle) mailToken(t testing.TB, userID, template string) string {
	t.Helper()
	b.settle(t)
	mails := b.mailer.take(userID, template)
	require.Len(t, mails, 1, template)
	u, err := url.Parse(mails[0].Data["link"])
	require.NoError(t, err)
	return u.Query().Get("token")
}

func uniqueEmail() string { return "user-" + strings.ToLower(rand.Text()) + "@example.com" }

func withNow(now func() time.Time) option {
	return func(_ *Config, w *wiring) { w.now = now }
}

// deleteKeys removes what a test wrote to the shared Redis: only its own prefix.
func deleteKeys(rdb redis.UniversalClient, prefix string) {
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		_ = rdb.Del(ctx, iter.Val()).Err()
	}
}
