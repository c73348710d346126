package main_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v76"

	"github.com/backplane/backplane/internal/dbtest"
	"github.com/backplane/backplane/internal/redistest"
	"github.com/backplane/backplane/internal/scenario"
	"github.com/backplane/backplane/internal/stripetest"
	"github.com/backplane/backplane/services"
)

// replicatedMesh is a deployment of `backplane serve` processes on one PostgreSQL (a
// fresh database) and one Redis: two gateways and some replicas of every service, each
// service behind a TCP balancer of the test's own that stands in for its Kubernetes
// Service (connections go to a live replica, round robin), all over mutual TLS.
type replicatedMesh struct {
	gateways []*gatewayPiece
	services map[string][]*piece
	// dataDir is every piece's data dir: notification's replicas share its mailbox, and
	// asset's its bucket.
	dataDir string
	dbURL   string
	// stripe is the Stripe every subscription replica calls; webhooks are signed with
	// replicaWebhookSecret.
	stripe *stripetest.Fake
}

// replicaWebhookSecret signs the Stripe events the replicated mesh is sent.
const replicaWebhookSecret = "whsec_replicas_test"

type gatewayPiece struct {
	*piece
	http string
}

// startReplicatedMesh migrates a fresh database, starts replicas processes of every
// service and two gateways, and waits until every one is ready.
func startReplicatedMesh(t *testing.T, replicas int) *replicatedMesh {
	t.Helper()
	dbURL := dbtest.NewDatabase(t)
	migrate := exec.CommandContext(t.Context(), binary, "migrate")
	migrate.Env = append(os.Environ(), "BACKPLANE_DATABASE_URL="+dbURL)
	out, err := migrate.CombinedOutput()
	require.NoError(t, err, "%s", out)

	m := &replicatedMesh{services: map[string][]*piece{}, dataDir: t.TempDir(), dbURL: dbURL, stripe: stripetest.NewFake(t)}
	certs := meshCerts(t)
	common := []string{
		"BACKPLANE_MIGRATE_ON_START=false",
		"BACKPLANE_DATABASE_URL=" + dbURL,
		"BACKPLANE_REDIS_URL=" + redistest.URL(),
		"BACKPLANE_SERVICE_TOKEN_SECRET=test-secret-test-secret-test-secret-0123",
		"BACKPLANE_KEY_ENCRYPTION_KEY=dGVzdC1rZXktZW5jcnlwdGlvbi1rZXktMDEyMzQ1Njc=",
		"BACKPLANE_PUBLIC_URL=https://app.backplane.test",
		"BACKPLANE_DATA_DIR=" + m.dataDir,
		"BACKPLANE_LOG_FORMAT=text",
		"BACKPLANE_SHUTDOWN_TIMEOUT=15s",
		// Every client here comes from 127.0.0.1; the limits are not what is tested.
		"BACKPLANE_RATE_LIMIT_ANONYMOUS=100000/m",
		"BACKPLANE_RATE_LIMIT_AUTHENTICATED=100000/m",
		// An email job left running by a killed replica is taken back after 4 s, not 1 m.
		"BACKPLANE_NOTIFY_LEASE=4s",
		"BACKPLANE_NOTIFY_POLL_INTERVAL=200ms",
		"BACKPLANE_NOTIFY_SIGNING_KEY=unsubscribe-links-key-unsubscribe-links-key",
		"BACKPLANE_STRIPE_SECRET_KEY=sk_test_replicas",
		"BACKPLANE_STRIPE_WEBHOOK_SECRET=" + replicaWebhookSecret,
		"BACKPLANE_STRIPE_API_BASE=" + m.stripe.URL,
		// One key for every asset replica, so that a URL one signs, another serves.
		"BACKPLANE_ASSET_SIGNING_KEY=asset-download-urls-key-asset-download-urls-key",
		// Sign-ups answer with tokens and a taken address with 409, which the workload
		// reads as a sign-up applied by an attempt whose answer was lost.
		"BACKPLANE_SIGNUP_MODE=instant",
	}
	addrs := map[string][]string{}
	for _, s := range services.Names() {
		for range replicas {
			addrs[s] = append(addrs[s], freeAddr(t))
		}
		common = append(common, fmt.Sprintf("BACKPLANE_%s_ADDR=%s", strings.ToUpper(s), startBalancer(t, addrs[s])))
	}
	env := func(piece string, extra ...string) []string {
		return append(append(append([]string{}, common...), mtlsEnv(certs[piece])...), extra...)
	}
	for _, s := range services.Names() {
		for _, a := range addrs[s] {
			m.services[s] = append(m.services[s], servePiece(t, s, env(s, "BACKPLANE_GRPC_ADDR="+a)))
		}
	}
	for range 2 {
		g := &gatewayPiece{http: freeAddr(t)}
		g.piece = servePiece(t, "gateway", env("gateway", "BACKPLANE_HTTP_ADDR="+g.http, "BACKPLANE_GRPC_ADDR="+freeAddr(t)))
		m.gateways = append(m.gateways, g)
	}
	for _, s := range services.Names() {
		for _, p := range m.services[s] {
			p.waitReadyWithin(t, p.admin, 2*time.Minute)
		}
	}
	for _, g := range m.gateways {
		g.waitReadyWithin(t, g.admin, 2*time.Minute)
	}
	return m
}

// waitReadyWithin is waitReady with a bound of its own: a dozen processes starting at
// once on a loaded machine may need more than its 30 s.
func (p *process) waitReadyWithin(t testing.TB, admin string, bound time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(bound); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case <-p.done:
			t.Fatalf("%s exited early: %v\n%s", p.name, p.err, p.out.String())
		default:
		}
		if resp, err := fetch(t.Context(), "http://"+admin+"/readyz"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
	}
	t.Fatalf("%s was not ready within %s\n%s", p.name, bound, p.out.String())
}

// startBalancer listens on a loopback port and relays each connection to one of
// backends, round robin, skipping those that refuse it, as a Kubernetes Service's
// virtual IP does for the replicas behind it. It returns the address.
func startBalancer(t *testing.T, backends []string) string {
	t.Helper()
	var lc net.ListenConfig
	lis, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var next atomic.Uint32
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = lis.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			client, err := lis.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer func() { _ = client.Close() }()
				start := int(next.Add(1))
				var backend net.Conn
				for i := range backends {
					d := net.Dialer{Timeout: time.Second}
					if backend, err = d.DialContext(t.Context(), "tcp", backends[(start+i)%len(backends)]); err == nil {
						break
					}
				}
				if backend == nil {
					return
				}
				defer func() { _ = backend.Close() }()
				done := make(chan struct{}, 2)
				relay := func(dst, src net.Conn) {
					_, _ = io.Copy(dst, src)
					// Half-close, so the other direction can finish.
					if tc, ok := dst.(*net.TCPConn); ok {
						_ = tc.CloseWrite()
					}
					done <- struct{}{}
				}
				go relay(backend, client)
				go relay(client, backend)
				<-done
				<-done
			})
		}
	})
	return lis.Addr().String()
}

// edgeClient is a REST client of several gateways, as a client behind a load balancer
// sees them: each request goes to the next gateway, and a request that could not be
// answered is sent again to the next one.
type edgeClient struct {
	gateways []string
	next     atomic.Uint32
	http     *http.Client
	// retryAnyTransportError retries whatever went wrong below HTTP, as a client must
	// when a gateway may die mid-request; without it only a connection the gateway
	// refused (it had closed its listener) is retried.
	retryAnyTransportError bool

	requests, retries atomic.Int64
	mu                sync.Mutex
	failures          []string
}

func newEdgeClient(m *replicatedMesh, retryAnyTransportError bool) *edgeClient {
	c := &edgeClient{http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}, retryAnyTransportError: retryAnyTransportError}
	for _, g := range m.gateways {
		c.gateways = append(c.gateways, "http://"+g.http)
	}
	return c
}

// answer is a gateway's answer and whether any earlier attempt was sent again.
type answer struct {
	code    int
	body    map[string]any
	raw     []byte
	retried bool
}

// do sends a request until a gateway answers it with anything but 503, retrying as
// the client is set to. An error it does not retry is recorded as a failure, and
// answered with code 0.
func (c *edgeClient) do(ctx context.Context, method, path, token string, body any) answer {
	raw, _ := json.Marshal(body)
	return c.send(ctx, method, path, token, http.Header{"Content-Type": {"application/json"}}, raw)
}

// send is do with a body of any type, and headers of the caller's.
func (c *edgeClient) send(ctx context.Context, method, path, token string, header http.Header, raw []byte) answer {
	c.requests.Add(1)
	var a answer
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			a.retried = true
			c.retries.Add(1)
			time.Sleep(50 * time.Millisecond)
		}
		base := c.gateways[int(c.next.Add(1))%len(c.gateways)]
		req, err := http.NewRequestWithContext(ctx, method, base+path, bytes.NewReader(raw))
		if err != nil {
			c.fail("%s %s: %v", method, path, err)
			return a
		}
		for k, v := range header {
			req.Header[k] = v
		}
		// Makes a POST replayable, so the transport sends it again itself when the
		// keep-alive connection it picked was closed by the server meanwhile.
		req.Header.Set("Idempotency-Key", fmt.Sprintf("%p-%d", &a, attempt))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.http.Do(req)
		if err != nil {
			var op *net.OpError
			refused := errors.As(err, &op) && op.Op == "dial"
			if (refused || c.retryAnyTransportError) && attempt < 20 && ctx.Err() == nil {
				continue
			}
			c.fail("%s %s via %s: %v", method, path, base, err)
			return a
		}
		data, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			if c.retryAnyTransportError && attempt < 20 {
				continue
			}
			c.fail("%s %s via %s: reading the answer: %v", method, path, base, err)
			return a
		}
		if resp.StatusCode == http.StatusServiceUnavailable && attempt < 20 {
			continue // UNAVAILABLE: retried, as the API documents
		}
		a.code, a.body, a.raw = resp.StatusCode, map[string]any{}, data
		if len(data) > 0 {
			_ = json.Unmarshal(data, &a.body)
		}
		return a
	}
}

func (c *edgeClient) fail(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failures = append(c.failures, fmt.Sprintf(format, args...))
}

// expect records a failure unless the answer has code want.
func (c *edgeClient) expect(a answer, want int, what string) bool {
	if a.code == want {
		return true
	}
	if a.code != 0 { // 0: already recorded
		c.fail("%s: answered %d, want %d: %v", what, a.code, want, a.body)
	}
	return false
}

// mailboxCount counts the emails in the dev mailbox under dataDir, per recipient and
// subject. The mailbox names each file for its notification, so a count above one is
// two notifications, not one written twice.
func mailboxCount(t *testing.T, dataDir string) map[string]map[string]int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dataDir, "mailbox", "*.eml"))
	require.NoError(t, err)
	out := map[string]map[string]int{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		msg, err := mail.ReadMessage(bytes.NewReader(raw))
		require.NoError(t, err, f)
		to, err := mail.ParseAddress(msg.Header.Get("To"))
		require.NoError(t, err, f)
		if out[to.Address] == nil {
			out[to.Address] = map[string]int{}
		}
		out[to.Address][msg.Header.Get("Subject")]++
	}
	return out
}

// loginAgent is the User-Agent of the workload's log-ins: auth keeps it with each
// session, which tells a log-in's session from the sign-up's.
const loginAgent = "replicas-test-login"

// subscriptionEnded is the title (and email subject) of the notice of an ended
// subscription.
const subscriptionEnded = "Your subscription has ended"

// uploadFile declares a file of its own bytes (about 200 KiB, made from name) and sends
// them, and returns them. A PUT whose answer was lost with a killed replica, sent again,
// finds the file stored already: FAILED_PRECONDITION (400), which the checks of what
// is stored then judge.
func (c *edgeClient) uploadFile(ctx context.Context, token, name string) []byte {
	content := bytes.Repeat([]byte("replica file "+name+"\n"), 200<<10/(len(name)+14))
	sum := sha256.Sum256(content)
	a := c.do(ctx, "POST", "/v1/assets", token, map[string]any{
		"filename": name + ".txt", "contentType": "text/plain", "sizeBytes": len(content), "sha256": hex.EncodeToString(sum[:]),
	})
	if !c.expect(a, http.StatusOK, "declare "+name) {
		return content
	}
	id := fmt.Sprint(a.body["asset"].(map[string]any)["id"])
	a = c.send(ctx, "PUT", "/v1/assets/"+id+"/content", token, http.Header{"Content-Type": {"text/plain"}}, content)
	if !a.retried || a.code != http.StatusBadRequest {
		c.expect(a, http.StatusOK, "upload "+name)
	}
	return content
}

// deliverTwice sends one signed Stripe event about a subscription twice at once, as
// Stripe does when it retries a delivery it thinks failed: one copy through each
// gateway. Both must be answered 200.
func (c *edgeClient) deliverTwice(ctx context.Context, id string, typ stripe.EventType, subscription string) {
	body := stripetest.Event(id, typ, map[string]any{"id": subscription, "object": "subscription"})
	header := http.Header{"Content-Type": {"application/json"}, "Stripe-Signature": {stripetest.Sign(body, replicaWebhookSecret, time.Now())}}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			c.expect(c.send(ctx, "POST", "/webhooks/stripe", "", header, body), http.StatusOK, "deliver "+id)
		})
	}
	wg.Wait()
}

// TestReplicasLoseNothingAndDoNothingTwice runs two gateways and two replicas of every
// service as separate processes on one PostgreSQL and one Redis, drives a bounded mixed
// workload through both gateways (sign-ups, whose verification emails notification
// sends; logins; refreshes; usage events each sent twice with one idempotency key, on
// emails_sent, a meter nothing else feeds: the edge counts api_calls itself; a file
// upload each; and Stripe webhooks, each event delivered twice at once through both
// gateways, that start and then end a subscription), and SIGKILLs one replica of every
// piece when half the accounts are done. Then: no request failed but for retried
// UNAVAILABLE (and the connections the dead gateway broke), every account got its one
// email, every usage total is exact, every file is stored once and whole, and every
// webhook had its effect once: one subscription row, one notice.
func TestReplicasLoseNothingAndDoNothingTwice(t *testing.T) {
	t.Parallel()
	started := time.Now()
	m := startReplicatedMesh(t, 2)
	ready := time.Since(started)
	c := newEdgeClient(m, true)
	ctx := t.Context()
	const users, events, workers = 8, 6, 4
	run := fmt.Sprint(time.Now().UnixNano())
	emails := make([]string, users)
	access := make([]string, users)
	userIDs := make([]string, users)
	files := make([][]byte, users)
	price := m.stripe.AddPrice("backplane_pro_monthly", 2000, "usd", "month")
	var finished atomic.Int32

	killed := make(chan []*piece)
	go func() {
		for finished.Load() < users/2 && ctx.Err() == nil {
			time.Sleep(20 * time.Millisecond)
		}
		victims := []*piece{m.gateways[0].piece}
		for _, s := range services.Names() {
			victims = append(victims, m.services[s][0])
		}
		for _, v := range victims {
			_ = v.cmd.Process.Kill() // SIGKILL: no drain, no goodbye
		}
		killed <- victims
	}()

	work := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range work {
				email := fmt.Sprintf("replica-%s-%d@example.com", run, i)
				emails[i] = email
				var refresh string
				a := c.do(ctx, "POST", "/v1/auth/signup", "", map[string]string{"email": email, "password": "correct horse battery", "displayName": "Replica"})
				// A sign-up answered 409 was stored by an attempt whose answer was lost
				// with a killed gateway or auth replica (the gateway, too, retries an
				// UNAVAILABLE call): stored once, as the checks below show.
				if a.code != http.StatusConflict && !c.expect(a, http.StatusOK, "sign up "+email) {
					continue
				}
				// The log-in's own user agent tells its sessions from the sign-up's.
				login, _ := json.Marshal(map[string]string{"email": email, "password": "correct horse battery"})
				a = c.send(ctx, "POST", "/v1/auth/login", "", http.Header{"Content-Type": {"application/json"}, "User-Agent": {loginAgent}}, login)
				if !c.expect(a, http.StatusOK, "log in "+email) {
					continue
				}
				access[i], refresh = fmt.Sprint(a.body["accessToken"]), fmt.Sprint(a.body["refreshToken"])
				if u, ok := a.body["user"].(map[string]any); ok {
					userIDs[i] = fmt.Sprint(u["id"])
				}
				for range 2 {
					a = c.do(ctx, "POST", "/v1/auth/refresh", "", map[string]string{"refreshToken": refresh})
					if c.expect(a, http.StatusOK, "refresh "+email) {
						access[i], refresh = fmt.Sprint(a.body["accessToken"]), fmt.Sprint(a.body["refreshToken"])
					}
				}
				for k := range events {
					for range 2 { // the same key twice: counted once
						a = c.do(ctx, "POST", "/v1/usage:record", access[i], map[string]any{
							"meter": "emails_sent", "quantity": k + 1, "idempotencyKey": fmt.Sprintf("%s-%d-%d", run, i, k),
						})
						c.expect(a, http.StatusOK, "record usage "+email)
					}
				}
				files[i] = c.uploadFile(ctx, access[i], fmt.Sprintf("%s-%d", run, i))
				// Stripe starts a subscription, then ends it; each event is delivered twice at
				// once, through both gateways (and so, by the balancer, to both replicas).
				sub := m.stripe.NewSubscription("cus_"+run+fmt.Sprint(i), price.ID, map[string]string{"user_id": userIDs[i], "plan_id": "pro_monthly"})
				c.deliverTwice(ctx, fmt.Sprintf("evt_%s_%d_created", run, i), stripe.EventTypeCustomerSubscriptionCreated, sub.ID)
				m.stripe.UpdateSubscription(sub.ID, func(s *stripe.Subscription) {
					s.Status, s.EndedAt, s.CanceledAt = stripe.SubscriptionStatusCanceled, time.Now().Unix(), time.Now().Unix()
				})
				c.deliverTwice(ctx, fmt.Sprintf("evt_%s_%d_deleted", run, i), stripe.EventTypeCustomerSubscriptionDeleted, sub.ID)
				finished.Add(1)
			}
		})
	}
	for i := range users {
		work <- i
	}
	close(work)
	wg.Wait()
	victims := <-killed
	workload := time.Since(started) - ready

	scenario.Step(t, "one replica of every piece was killed mid-run", func(t *testing.T) {
		for _, v := range victims {
			<-v.done
			require.ErrorContains(t, v.err, "signal: killed", v.name)
		}
	})
	scenario.Step(t, "no request failed but for what was retried", func(t *testing.T) {
		require.Empty(t, c.failures)
	})
	scenario.Step(t, "every usage total is exact", func(t *testing.T) {
		// emails_sent is a COUNT meter: each distinct event once, whatever its quantity.
		want := fmt.Sprint(events)
		for i := range users {
			a := c.do(ctx, "GET", "/v1/usage?meter=emails_sent", access[i], nil)
			require.Equal(t, http.StatusOK, a.code, a.body)
			meters := a.body["meters"].([]any)
			require.Len(t, meters, 1)
			require.Equal(t, want, fmt.Sprint(meters[0].(map[string]any)["total"]), emails[i])
		}
	})
	conn, err := pgx.Connect(ctx, m.dbURL)
	require.NoError(t, err)
	defer func() { _ = conn.Close(context.Background()) }()
	scenario.Step(t, "every file is stored once, whole", func(t *testing.T) {
		for i := range users {
			// An extra PENDING asset is a declaration whose answer was lost and that the
			// client made again: it holds no bytes, and is removed after a day.
			rows, err := conn.Query(ctx, `SELECT state, coalesce(sha256, ''), size_bytes FROM asset.assets WHERE owner_user_id = $1::uuid AND state <> 'PENDING'`, userIDs[i])
			require.NoError(t, err)
			var stored []string
			for rows.Next() {
				var state, sum string
				var size int64
				require.NoError(t, rows.Scan(&state, &sum, &size))
				stored = append(stored, fmt.Sprintf("%s %s %d", state, sum, size))
			}
			require.NoError(t, rows.Err())
			want := sha256.Sum256(files[i])
			require.Equal(t, []string{fmt.Sprintf("READY %x %d", want, len(files[i]))}, stored, emails[i])
		}
		for i := range users {
			a := c.do(ctx, "GET", "/v1/assets", access[i], nil)
			require.Equal(t, http.StatusOK, a.code, a.body)
			var id string
			for _, v := range a.body["assets"].([]any) {
				if as := v.(map[string]any); as["state"] == "ASSET_STATE_READY" {
					id = fmt.Sprint(as["id"])
				}
			}
			got := c.send(ctx, "GET", "/v1/assets/"+id+"/content", access[i], nil, nil)
			require.Equal(t, http.StatusOK, got.code, emails[i])
			require.Equal(t, files[i], got.raw, "%s: the bytes read back", emails[i])
		}
	})
	scenario.Step(t, "every webhook was applied once", func(t *testing.T) {
		var events, distinct, applied int
		require.NoError(t, conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT id), count(*) FILTER (WHERE outcome = 'applied') FROM subscription.stripe_events WHERE id LIKE $1`,
			"evt_"+run+"_%").Scan(&events, &distinct, &applied))
		require.Equal(t, []int{2 * users, 2 * users, 2 * users}, []int{events, distinct, applied}, "events recorded, distinct, applied")
		for i := range users {
			var subs int
			var status string
			require.NoError(t, conn.QueryRow(ctx, `SELECT count(*), coalesce(max(status), '') FROM subscription.subscriptions WHERE user_id = $1::uuid`, userIDs[i]).Scan(&subs, &status))
			require.Equal(t, 1, subs, emails[i])
			require.Equal(t, "canceled", status, emails[i])
			var notices int
			require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM notification.notification WHERE user_id = $1::uuid AND title = $2`, userIDs[i], subscriptionEnded).Scan(&notices))
			require.Equal(t, 1, notices, "%s: one notification of the ended subscription", emails[i])
		}
	})
	// Each account is sent the verification at sign-up, and a new-sign-in notice at its
	// first log-in applied: the log-ins' client (loginAgent) differs from the sign-ups',
	// and a second log-in applied by a lost answer's attempt comes from a client already
	// seen. auth's sessions of the log-in's user agent say whether a log-in was applied.
	//
	// auth queues each email as a River job in the transaction of its cause, so a killed
	// auth replica loses none it committed; a job that replica was running when killed is
	// taken back by another after auth's rescue delay, which the wait below outlasts only
	// when the kill came early. Nothing may be sent twice, ever.
	const verify, signIn = "Verify your email address", "New sign-in to your account"
	lost := 0
	scenario.Step(t, "no email was sent twice, and none lost but with a killed auth replica", func(t *testing.T) {
		sessions := map[string]int{}
		for _, e := range emails {
			var n int
			require.NoError(t, conn.QueryRow(ctx,
				`SELECT count(*) FROM auth.sessions s JOIN auth.users u ON u.id = s.user_id WHERE u.email = $1 AND s.user_agent = $2`, e, loginAgent).Scan(&n))
			sessions[e] = n
		}
		var got map[string]map[string]int
		// Long enough for a job the killed auth replica was running to be rescued (30 s).
		for deadline := time.Now().Add(45 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			got, lost = mailboxCount(t, m.dataDir), 0
			unsent := 0
			for _, e := range emails {
				lost += max(0, 1-got[e][verify]) + max(0, min(sessions[e], 1)-got[e][signIn])
				unsent += max(0, 1-got[e][subscriptionEnded])
			}
			if lost+unsent == 0 || time.Now().After(deadline) {
				break
			}
		}
		for _, e := range emails {
			require.LessOrEqual(t, got[e][verify], 1, "%s: %v", e, got[e])
			require.LessOrEqual(t, got[e][signIn], min(sessions[e], 1), "%s: %v, %d log-in sessions", e, got[e], sessions[e])
			// Billing notices are sent in the transaction that records their event: never
			// lost.
			require.Equal(t, 1, got[e][subscriptionEnded], "%s: %v", e, got[e])
			for subject := range got[e] {
				require.Contains(t, []string{verify, signIn, subscriptionEnded}, subject, e)
			}
		}
		require.LessOrEqual(t, lost, workers, "emails lost: %v", got)
	})
	t.Logf("replicas: %d processes (2 gateways, 2 of each of %d services) ready in %s; %d requests (%d files uploaded, %d Stripe events each delivered twice at once), %d attempts sent again, %d processes SIGKILLed mid-run; workload %s; %d of %d emails lost with the killed auth replica",
		2+2*len(services.Names()), len(services.Names()), ready.Round(100*time.Millisecond), c.requests.Load(), users, 2*users, c.retries.Load(), len(victims), workload.Round(100*time.Millisecond), lost, 2*users)
}

// TestGatewayDrainsOnSIGTERMWithoutAFailedRequest sends SIGTERM to one of two gateways
// while clients keep both busy. The client retries only what no gateway ever saw: a
// connection refused once the draining gateway has closed its listener (and, inside
// Go's transport, a keep-alive connection the server closed as idle). Everything else,
// an answer cut short included, is a failure; there must be none, and the gateway must
// exit 0.
func TestGatewayDrainsOnSIGTERMWithoutAFailedRequest(t *testing.T) {
	t.Parallel()
	m := startReplicatedMesh(t, 1)
	c := newEdgeClient(m, false)
	ctx := t.Context()
	run := fmt.Sprint(time.Now().UnixNano())

	email := fmt.Sprintf("drain-%s@example.com", run)
	a := c.do(ctx, "POST", "/v1/auth/signup", "", map[string]string{"email": email, "password": "correct horse battery", "displayName": "Drain"})
	require.Equal(t, http.StatusOK, a.code, a.body)
	access := fmt.Sprint(a.body["accessToken"])

	const workers, perWorker = 4, 60
	var sent atomic.Int64
	var inFlightAtTerm atomic.Int64
	var inFlight atomic.Int64
	terminated := make(chan struct{})
	go func() {
		defer close(terminated)
		for sent.Load() < workers*perWorker/3 && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
		inFlightAtTerm.Store(inFlight.Load())
		_ = m.gateways[0].cmd.Process.Signal(syscall.SIGTERM)
		<-m.gateways[0].done
	}()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				sent.Add(1)
				inFlight.Add(1)
				if i%2 == 0 {
					c.expect(c.do(ctx, "GET", "/v1/users/me", access, nil), http.StatusOK, "get the account")
				} else {
					c.expect(c.do(ctx, "POST", "/v1/usage:record", access, map[string]any{
						"meter": "emails_sent", "quantity": 1, "idempotencyKey": fmt.Sprintf("%s-%d-%d", run, w, i),
					}), http.StatusOK, "record usage")
				}
				inFlight.Add(-1)
			}
		})
	}
	wg.Wait()
	<-terminated

	scenario.Step(t, "the gateway exited 0", func(t *testing.T) {
		require.NoError(t, m.gateways[0].err, "%s", m.gateways[0].out.String())
	})
	scenario.Step(t, "no request failed", func(t *testing.T) {
		require.Empty(t, c.failures)
	})
	scenario.Step(t, "every usage event was counted once", func(t *testing.T) {
		a := c.do(ctx, "GET", "/v1/usage?meter=emails_sent", access, nil)
		require.Equal(t, http.StatusOK, a.code, a.body)
		require.Equal(t, fmt.Sprint(workers*perWorker/2), fmt.Sprint(a.body["meters"].([]any)[0].(map[string]any)["total"]))
	})
	t.Logf("drain: %d requests through two gateways, SIGTERM to one with %d in flight, %d connections refused and sent to the other, 0 failed",
		c.requests.Load(), inFlightAtTerm.Load(), c.retries.Load())
}
