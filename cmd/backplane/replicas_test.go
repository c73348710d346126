package main_test

import (
	"bytes"
	"context"
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

	"github.com/backplane/backplane/internal/dbtest"
	"github.com/backplane/backplane/internal/redistest"
	"github.com/backplane/backplane/internal/scenario"
	"github.com/backplane/backplane/services"
)

// replicatedMesh is a deployment of `backplane serve` processes on one PostgreSQL (a
// fresh database) and one Redis: two gateways and some replicas of every service, each
// service behind a TCP balancer of the test's own that stands in for its Kubernetes
// Service (connections go to a live replica, round robin), all over mutual TLS.
type replicatedMesh struct {
	gateways []*gatewayPiece
	services map[string][]*piece
	// dataDir is every piece's data dir: notification's replicas share its mailbox.
	dataDir string
	dbURL   string
}

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

	m := &replicatedMesh{services: map[string][]*piece{}, dataDir: t.TempDir(), dbURL: dbURL}
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
	retried bool
}

// do sends a request until a gateway answers it with anything but 503, retrying as
// the client is set to. An error it does not retry is recorded as a failure, and
// answered with code 0.
func (c *edgeClient) do(ctx context.Context, method, path, token string, body any) answer {
	c.requests.Add(1)
	raw, _ := json.Marshal(body)
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
		req.Header.Set("Content-Type", "application/json")
		if path == "/v1/auth/login" {
			// Log-ins come from another client than sign-ups, so each account's first
			// log-in is a sign-in from a new client, which auth announces by email.
			req.Header.Set("User-Agent", "replica-login/1.0")
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
		a.code, a.body = resp.StatusCode, map[string]any{}
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

// TestReplicasLoseNothingAndDoNothingTwice runs two gateways and two replicas of every
// service as separate processes on one PostgreSQL and one Redis, drives a bounded mixed
// workload through both gateways (sign-ups, whose verification emails notification
// sends; logins; refreshes; usage events each sent twice with one idempotency key, on emails_sent, a meter
// nothing else feeds: the edge counts api_calls itself), and
// SIGKILLs one replica of every piece when half the accounts are done. Then: no
// request failed but for retried UNAVAILABLE (and the connections the dead gateway
// broke), every account got its one email, and every usage total is exact.
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
				a = c.do(ctx, "POST", "/v1/auth/login", "", map[string]string{"email": email, "password": "correct horse battery"})
				if !c.expect(a, http.StatusOK, "log in "+email) {
					continue
				}
				access[i], refresh = fmt.Sprint(a.body["accessToken"]), fmt.Sprint(a.body["refreshToken"])
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
	// Each account is sent the verification at sign-up, and a new-sign-in notice at its
	// first log-in applied (the log-ins' client differs from the sign-ups'; a second
	// log-in applied by a lost answer's attempt comes from a client already seen). auth's
	// sessions say whether a log-in was applied (the sign-up's and one per log-in).
	//
	// auth queues each email as a River job in the transaction of its cause, so a killed
	// auth replica loses none it committed; a job that replica was running when killed is
	// taken back by another after auth's rescue delay, which the wait below outlasts only
	// when the kill came early. Nothing may be sent twice, ever.
	const verify, signIn = "Verify your email address", "New sign-in to your account"
	conn, err := pgx.Connect(ctx, m.dbURL)
	require.NoError(t, err)
	defer func() { _ = conn.Close(context.Background()) }()
	lost := 0
	scenario.Step(t, "no email was sent twice, and none lost but with a killed auth replica", func(t *testing.T) {
		sessions := map[string]int{}
		for _, e := range emails {
			var n int
			require.NoError(t, conn.QueryRow(ctx,
				`SELECT count(*) FROM auth.sessions s JOIN auth.users u ON u.id = s.user_id WHERE u.email = $1`, e).Scan(&n))
			sessions[e] = n
		}
		var got map[string]map[string]int
		// Long enough for a job the killed auth replica was running to be rescued (30 s).
		for deadline := time.Now().Add(45 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			got, lost = mailboxCount(t, m.dataDir), 0
			for _, e := range emails {
				lost += max(0, 1-got[e][verify]) + max(0, min(sessions[e]-1, 1)-got[e][signIn])
			}
			if lost == 0 || time.Now().After(deadline) {
				break
			}
		}
		for _, e := range emails {
			require.LessOrEqual(t, got[e][verify], 1, "%s: %v", e, got[e])
			// Each account logged in once; a refresh retried across a killed replica can
			// end that login's session as a reused token, so sessions can undercount it.
			require.LessOrEqual(t, got[e][signIn], 1, "%s: %v, %d sessions", e, got[e], sessions[e])
			for subject := range got[e] {
				require.Contains(t, []string{verify, signIn}, subject, e)
			}
		}
		require.LessOrEqual(t, lost, workers, "emails lost: %v", got)
	})
	t.Logf("replicas: %d processes (2 gateways, 2 of each of %d services) ready in %s; %d requests, %d attempts sent again, %d processes SIGKILLed mid-run; workload %s; %d of %d emails lost with the killed auth replica",
		2+2*len(services.Names()), len(services.Names()), ready.Round(100*time.Millisecond), c.requests.Load(), c.retries.Load(), len(victims), workload.Round(100*time.Millisecond), lost, 2*users)
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
