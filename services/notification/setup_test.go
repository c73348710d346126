package notification

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	"github.com/backplane/backplane/internal/dbtest"
	"github.com/backplane/backplane/internal/grpctest"
	"github.com/backplane/backplane/internal/grpctest/authntest"
	"github.com/backplane/backplane/internal/jobs"
	"github.com/backplane/backplane/internal/redistest"
	"github.com/backplane/backplane/internal/service"
)

// testPublicURL is where the test product is served; email links start with it.
const testPublicURL = "https://app.example.test"

// testPool is a private database migrated as `backplane migrate` leaves it: the
// service's schema, its River schema, and the upgrade that moves the outbox onto River
// (on a new database, it drops the empty outbox table).
func testPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return dbtest.NewPool(t, serviceName, migrations(),
		dbtest.WithStep(fmt.Sprintf("river migration %d", jobs.SchemaVersion()), func(ctx context.Context, pool *pgxpool.Pool) error {
			_, err := jobs.Migrate(ctx, pool, serviceName, nil)
			return err
		}),
		dbtest.WithStep("notification upgrade: outbox onto River", func(ctx context.Context, pool *pgxpool.Pool) error {
			return upgrade(ctx, pool, slog.New(slog.DiscardHandler))
		}),
	)
}

// bundle is what most tests need: a server on a private database, served over gRPC
// through the production interceptor chain with real authentication, and the SendGrid
// stand-in its workers deliver to.
type bundle struct {
	server   *Server
	pool     *pgxpool.Pool
	sendgrid *fakeSendgrid
	deps     service.Deps
	cfg      Config
	authn    *authntest.Authn
	api      api
}

// testConfig delivers to the stand-in with retries, leases and polls short enough for
// tests. No workers run until a test starts them.
func testConfig(sg *fakeSendgrid) Config {
	s := defaultConfig()
	s.SendgridAPIKey = "SG.test-key"
	s.SendgridBaseURL = sg.URL
	s.SigningKey = []byte("a test signing key of at least 32 bytes")
	s.RetryBase = 10 * time.Millisecond
	s.RetryMax = 50 * time.Millisecond
	s.Lease = 5 * time.Second
	s.PollInterval = 20 * time.Millisecond
	s.MaxAttempts = 5
	return s
}

// setup builds a bundle; opts adjust the configuration before the server is built.
func setup(t testing.TB, opts ...func(*Config)) *bundle {
	t.Helper()
	sg := newFakeSendgrid(t)
	s := testConfig(sg)
	for _, o := range opts {
		o(&s)
	}
	deps := service.Deps{
		Logger:    slog.New(slog.DiscardHandler),
		DB:        testPool(t),
		Redis:     redistest.Client(t),
		PublicURL: testPublicURL,
		DataDir:   t.TempDir(),
	}
	b := &bundle{server: newTestServer(t, deps, s), pool: deps.DB, sendgrid: sg, deps: deps, cfg: s, authn: newTestAuthn(t, deps.Redis)}
	b.api = b.serve(t, b.server)
	return b
}

// newTestServer builds a server whose user recipients' addresses are derived from their
// ids, standing in for the auth service.
func newTestServer(t testing.TB, deps service.Deps, cfg Config) *Server {
	t.Helper()
	srv, err := New(context.Background(), cfg, deps)
	require.NoError(t, err)
	srv.deliverer.lookupEmail = func(_ context.Context, id uuid.UUID) (string, error) {
		return userAddress(id), nil
	}
	return srv
}

func userAddress(id uuid.UUID) string { return id.String() + "@users.example.test" }

// startWorkers runs n workers for srv until the test ends: a River client of the
// service's, as one replica runs. srv's own client inserts the jobs; this one works
// them. stop stops it sooner; it may be called more than once.
func startWorkers(t testing.TB, srv *Server, n int) (stop func()) {
	t.Helper()
	client, err := srv.newJobs(n)
	require.NoError(t, err)
	require.NoError(t, client.Start(context.Background()))
	var once sync.Once
	stop = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			require.NoError(t, client.Stop(ctx))
		})
	}
	t.Cleanup(stop)
	return stop
}

// api is a server reached over gRPC as its callers reach it: through the production
// interceptor chain (internal/grpctest) with the authentication every Backplane server
// runs.
type api struct {
	// user carries no credential of its own: calls carry a user's access token
	// (bundle.as), or nothing.
	user notificationv1.NotificationServiceClient
	// internal carries the auth service's service credential, as auth's calls to the
	// INTERNAL Send do.
	internal notificationv1.NotificationServiceClient
}

// serve serves srv over gRPC until the test ends.
func (b *bundle) serve(t testing.TB, srv *Server) api {
	t.Helper()
	s := grpctest.Start(t, func(reg grpc.ServiceRegistrar) { notificationv1.RegisterNotificationServiceServer(reg, srv) },
		grpctest.WithAuthenticator(b.authn.Interceptor))
	return api{
		user:     notificationv1.NewNotificationServiceClient(s.Conn),
		internal: notificationv1.NewNotificationServiceClient(s.Dial(t, grpc.WithPerRPCCredentials(b.authn.Services.PerRPCCredentials("auth")))),
	}
}

// as is a request context carrying an access token of userID, on a live session.
func (b *bundle) as(t testing.TB, userID uuid.UUID) context.Context {
	t.Helper()
	return grpctest.Bearer(context.Background(), b.authn.AccessToken(t, userID))
}

// newTestAuthn is the authentication every Backplane server runs, following ended
// sessions as production servers do (a stream ends within a second of its session).
func newTestAuthn(t testing.TB, rdb redis.UniversalClient) *authntest.Authn {
	t.Helper()
	return authntest.New(t, authntest.Config{Redis: rdb, FollowSessionEnds: true})
}

// send sends a notification through the API as the auth service does, with sensible
// defaults, and returns its id.
func (b *bundle) send(t testing.TB, req *notificationv1.SendRequest) uuid.UUID {
	t.Helper()
	if req.GetTemplate() == "" {
		req.Template = "message"
		req.Data = map[string]string{"title": "Hello", "body": "Something happened."}
	}
	if req.GetCategory() == 0 {
		req.Category = notificationv1.Category_CATEGORY_ACCOUNT
	}
	if len(req.GetChannels()) == 0 {
		req.Channels = []notificationv1.Channel{notificationv1.Channel_CHANNEL_EMAIL}
	}
	if req.GetIdempotencyKey() == "" {
		req.IdempotencyKey = uuid.NewString()
	}
	resp, err := b.api.internal.Send(context.Background(), req)
	require.NoError(t, err)
	return uuid.MustParse(resp.GetNotificationId())
}

// email returns the email delivery row of a notification.
func (b *bundle) email(t testing.TB, id uuid.UUID) deliveryView {
	t.Helper()
	rows, err := b.server.store.deliveries(context.Background(), []uuid.UUID{id})
	require.NoError(t, err)
	for _, r := range rows[id] {
		if r.Channel == channelEmail {
			return deliveryView{Status: r.Status, Reason: r.StatusReason, Attempts: int(r.Attempts), LastError: r.LastError, Address: r.Address}
		}
	}
	t.Fatalf("notification %s has no email row", id)
	return deliveryView{}
}

// deliveryView is the part of a delivery row tests look at.
type deliveryView struct {
	Status    string
	Reason    string
	Attempts  int
	LastError string
	Address   string
}

// waitForStatus polls until the notification's email reaches status.
func (b *bundle) waitForStatus(t testing.TB, id uuid.UUID, status string) deliveryView {
	t.Helper()
	var v deliveryView
	require.Eventually(t, func() bool {
		v = b.email(t, id)
		return v.Status == status
	}, 20*time.Second, 10*time.Millisecond, "email of %s never became %s", id, status)
	return v
}

// fakeSendgrid stands in for SendGrid's /v3/mail/send. Each request is answered by the
// next scripted reply, or 202 Accepted once the script runs out.
type fakeSendgrid struct {
	*httptest.Server
	mu       sync.Mutex
	delay    time.Duration // how long each request takes
	script   []fakeReply
	accepted []sentMail
	requests int
}

// fakeReply is one scripted answer.
type fakeReply struct {
	status int
	header http.Header
}

// sentMail is what the stand-in accepted, decoded from SendGrid's JSON.
type sentMail struct {
	To             string
	Subject        string
	Headers        map[string]string
	NotificationID string
	Authorization  string
	At             time.Time
}

func newFakeSendgrid(t testing.TB) *fakeSendgrid {
	f := &fakeSendgrid{}
	f.Server = httptest.NewServer(http.HandlerFunc(f.handle))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeSendgrid) handle(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v3/mail/send" {
		http.NotFound(w, r)
		return
	}
	raw, _ := io.ReadAll(r.Body)
	var body struct {
		Personalizations []struct {
			To []struct {
				Email string `json:"email"`
			} `json:"to"`
		} `json:"personalizations"`
		Subject    string            `json:"subject"`
		Headers    map[string]string `json:"headers"`
		CustomArgs map[string]string `json:"custom_args"`
	}
	if err := json.Unmarshal(raw, &body); err != nil || len(body.Personalizations) == 0 || len(body.Personalizations[0].To) == 0 {
		http.Error(w, `{"errors":[{"message":"bad request"}]}`, http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	delay := f.delay
	f.mu.Unlock()
	time.Sleep(delay)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	if len(f.script) > 0 {
		reply := f.script[0]
		f.script = f.script[1:]
		for k, v := range reply.header {
			w.Header()[k] = v
		}
		w.WriteHeader(reply.status)
		_, _ = w.Write([]byte(`{"errors":[{"message":"scripted failure"}]}`))
		return
	}
	f.accepted = append(f.accepted, sentMail{
		To: body.Personalizations[0].To[0].Email, Subject: body.Subject, Headers: body.Headers,
		NotificationID: body.CustomArgs["notification_id"], Authorization: r.Header.Get("Authorization"), At: time.Now(),
	})
	w.Header().Set("X-Message-Id", "msg-"+body.CustomArgs["notification_id"])
	w.WriteHeader(http.StatusAccepted)
}

// fail scripts the next replies.
func (f *fakeSendgrid) fail(replies ...fakeReply) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.script = append(f.script, replies...)
}

// sent returns the accepted emails so far.
func (f *fakeSendgrid) sent() []sentMail {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sentMail(nil), f.accepted...)
}

// sentTo returns the accepted emails of one notification.
func (f *fakeSendgrid) sentFor(id uuid.UUID) []sentMail {
	var out []sentMail
	for _, m := range f.sent() {
		if m.NotificationID == id.String() {
			out = append(out, m)
		}
	}
	return out
}
