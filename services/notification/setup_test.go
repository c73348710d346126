package notification

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	"github.com/backplane/backplane/internal/dbtest"
	"github.com/backplane/backplane/internal/identity"
	"github.com/backplane/backplane/internal/redistest"
	"github.com/backplane/backplane/internal/service"
)

// testPublicURL is where the test product is served; email links start with it.
const testPublicURL = "https://app.example.test"

// bundle is what most tests need: a server on a private database, its store, and the
// SendGrid stand-in its workers deliver to.
type bundle struct {
	server   *Server
	pool     *pgxpool.Pool
	sendgrid *fakeSendgrid
	deps     service.Deps
	cfg      Config
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
	pool := dbtest.NewPool(t, "notification", migrations())
	deps := service.Deps{
		Logger:    slog.New(slog.DiscardHandler),
		DB:        pool,
		Redis:     redistest.Client(t),
		PublicURL: testPublicURL,
		DataDir:   t.TempDir(),
	}
	return &bundle{server: newTestServer(t, deps, s), pool: pool, sendgrid: sg, deps: deps, cfg: s}
}

// newTestServer builds a server whose user recipients' addresses are derived from their
// ids, standing in for the auth service.
func newTestServer(t testing.TB, deps service.Deps, cfg Config) *Server {
	t.Helper()
	srv, err := New(context.Background(), cfg, deps)
	require.NoError(t, err)
	srv.pool.lookupEmail = func(_ context.Context, id uuid.UUID) (string, error) {
		return userAddress(id), nil
	}
	return srv
}

func userAddress(id uuid.UUID) string { return id.String() + "@users.example.test" }

// startWorkers runs the server's delivery pool with n workers until the test ends.
func startWorkers(t testing.TB, srv *Server, n int) {
	t.Helper()
	srv.pool.cfg.Workers = n
	stop := srv.pool.start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, stop(ctx))
	})
}

// userContext is a request context of an authenticated user.
func userContext(userID uuid.UUID) context.Context {
	return identity.WithPrincipal(context.Background(), identity.Principal{UserID: userID.String()})
}

// send sends a notification with sensible defaults and returns its id.
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
	resp, err := b.server.Send(context.Background(), req)
	require.NoError(t, err)
	return uuid.MustParse(resp.GetNotificationId())
}

// emailStatus returns the email outbox row of a notification.
func (b *bundle) email(t testing.TB, id uuid.UUID) outboxView {
	t.Helper()
	rows, err := b.server.store.deliveries(context.Background(), []uuid.UUID{id})
	require.NoError(t, err)
	for _, r := range rows[id] {
		if r.Channel == channelEmail {
			return outboxView{Status: r.Status, Reason: r.StatusReason, Attempts: int(r.Attempts), LastError: r.LastError, Address: r.Address}
		}
	}
	t.Fatalf("notification %s has no email row", id)
	return outboxView{}
}

// outboxView is the part of an outbox row tests look at.
type outboxView struct {
	Status    string
	Reason    string
	Attempts  int
	LastError string
	Address   string
}

// waitForStatus polls until the notification's email reaches status.
func (b *bundle) waitForStatus(t testing.TB, id uuid.UUID, status string) outboxView {
	t.Helper()
	var v outboxView
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
