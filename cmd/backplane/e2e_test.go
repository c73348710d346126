package main_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/dbtest"
	"github.com/backplane/backplane/internal/scenario"
	"github.com/backplane/backplane/services"
)

// binary is the backplane command built once for every test here: these tests run the
// program as an operator would, as a separate process.
var binary string

func TestMain(m *testing.M) {
	// A child asked to be a benchmark's object store (assets_s3_test.go) runs no tests.
	if addr := os.Getenv(envS3Serve); addr != "" {
		os.Exit(serveS3(addr))
	}
	dir, err := os.MkdirTemp("", "backplane-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "backplane")
	build := exec.CommandContext(context.Background(), "go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build backplane:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// freeAddr returns a loopback address nothing listens on right now.
// nextPort steps freeAddr through its range.
var nextPort atomic.Uint64

func freeAddr(t testing.TB) string {
	t.Helper()
	// A port below Linux's ephemeral range (32768-60999 by default): one the kernel
	// hands out for ":0" can be taken, between this check and the child's bind, by any
	// outgoing connection of the tests running in parallel, and was, twice; one below
	// the range can only be taken by another listener choosing it.
	// Each test process walks the range from its own place, so parallel packages start apart.
	for range 200 {
		port := 20000 + int((uint64(os.Getpid())*7919+nextPort.Add(1))%12000) //nolint:gosec // G115: below 12000
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		addr := l.Addr().String()
		require.NoError(t, l.Close())
		return addr
	}
	t.Fatal("no free loopback port between 20000 and 32000")
	return ""
}

// syncBuffer collects a process's output safely while it runs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// process is one run of the backplane binary. It stops when its test ends at the
// latest: SIGTERM first, as an operator stops it, and a kill if it has not exited 20 s
// later.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	// done is closed when the process has exited, with Wait's answer in err.
	done chan struct{}
	err  error
}

func startProcess(t testing.TB, env []string, args ...string) *process {
	t.Helper()
	p := &process{name: "backplane " + strings.Join(args, " "), out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.CommandContext(t.Context(), binary, args...)
	p.cmd.Cancel = func() error { return p.cmd.Process.Signal(syscall.SIGTERM) }
	p.cmd.WaitDelay = 20 * time.Second
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	require.NoError(t, p.cmd.Start())
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { <-p.done })
	return p
}

// waitReady polls admin's /readyz until it answers 200, failing if the process exits
// first or 30 s pass.
func (p *process) waitReady(t testing.TB, admin string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
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
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s was not ready within 30s\n%s", p.name, p.out.String())
}

// stop sends SIGTERM and requires a clean exit within 30 s.
func (p *process) stop(t testing.TB) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p.done:
		require.NoError(t, p.err, "%s should exit 0 on SIGTERM\n%s", p.name, p.out.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not exit within 30s of SIGTERM\n%s", p.name, p.out.String())
	}
}

// devProcess is a running `backplane dev`.
type devProcess struct {
	*process
	http     string
	grpc     string
	admin    string
	dataDir  string
	readyFor time.Duration
}

// startDev runs `backplane dev` against databaseURL and waits until /readyz answers 200.
func startDev(t testing.TB, databaseURL string, env ...string) *devProcess {
	t.Helper()
	return startDevIn(t, databaseURL, t.TempDir(), nil, env...)
}

// startDevIn runs `backplane dev args...` with dataDir as its data dir, and waits until
// /readyz answers 200, which it does only once everything has started: by then the
// process has said it is up (the log line may reach the test a moment later).
func startDevIn(t testing.TB, databaseURL, dataDir string, args []string, env ...string) *devProcess {
	t.Helper()
	p := &devProcess{http: freeAddr(t), grpc: freeAddr(t), admin: freeAddr(t), dataDir: dataDir}
	started := time.Now()
	p.process = startProcess(t, append([]string{
		"BACKPLANE_DATABASE_URL=" + databaseURL,
		"BACKPLANE_HTTP_ADDR=" + p.http,
		"BACKPLANE_GRPC_ADDR=" + p.grpc,
		"BACKPLANE_ADMIN_ADDR=" + p.admin,
		"BACKPLANE_DATA_DIR=" + p.dataDir,
		"BACKPLANE_REDIS_URL=",
	}, env...), append([]string{"dev"}, args...)...)
	p.waitReady(t, p.admin)
	require.Eventually(t, func() bool { return strings.Contains(p.out.String(), "backplane dev is up") },
		2*time.Second, 10*time.Millisecond, "/readyz answered 200 before backplane dev said it was up\n%s", p.out.String())
	p.readyFor = time.Since(started)
	return p
}

// fetch is http.Get bound to ctx.
func fetch(ctx context.Context, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	return http.DefaultClient.Do(req)
}

// get fetches url and reads the whole answer.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := fetch(t.Context(), url)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	return resp.StatusCode, string(body)
}

func TestDevBecomesReadyServesMetricsAndStopsGracefully(t *testing.T) {
	t.Parallel()
	p := startDev(t, dbtest.NewDatabase(t))

	scenario.Step(t, "healthz answers", func(t *testing.T) {
		code, body := get(t, "http://"+p.admin+"/healthz")
		require.Equal(t, http.StatusOK, code, body)
	})
	// A call through the REST front door reaches the subscription service over gRPC,
	// which the per-method server metrics then show.
	scenario.Step(t, "a REST call reaches a service", func(t *testing.T) {
		resp, err := fetch(t.Context(), "http://"+p.http+"/v1/plans")
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.NotEmpty(t, resp.Header.Get("X-Request-Id"))
	})
	scenario.Step(t, "an invalid request is refused at the edge, before any service", func(t *testing.T) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+p.http+"/v1/auth/login", strings.NewReader(`{"email":"x"}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	})
	scenario.Step(t, "metrics show the call", func(t *testing.T) {
		code, metrics := get(t, "http://"+p.admin+"/metrics")
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, metrics, `rpc_method="backplane.subscription.v1.SubscriptionService/ListPlans"`,
			"per-method gRPC server metrics are exported")
		require.Contains(t, metrics, "rpc_server_call_duration_seconds_count", "gRPC server durations are exported")
	})
	scenario.Step(t, "the River UI lists notification and its queue", func(t *testing.T) {
		// The admin port lists the services with jobs, and notification's queue, which
		// its workers registered when they started.
		code, body := get(t, "http://"+p.admin+"/jobs/")
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, `href="/jobs/notification/"`)
		code, body = get(t, "http://"+p.admin+"/jobs/notification/api/queues")
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, `"name":"default"`)
	})
	scenario.Step(t, "SIGTERM stops it gracefully", func(t *testing.T) {
		p.stop(t)
		require.Contains(t, p.out.String(), "shutting down")
	})
}

func TestDevRestartsOnAnExistingDatabase(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.NewDatabase(t)
	startDev(t, dbURL).stop(t)
	p := startDev(t, dbURL)
	p.stop(t)
}

func TestConcurrentMigrateProcessesBothSucceed(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.NewDatabase(t)
	run := func() error {
		cmd := exec.CommandContext(t.Context(), binary, "migrate")
		cmd.Env = append(os.Environ(), "BACKPLANE_DATABASE_URL="+dbURL)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	}
	errs := make(chan error, 2)
	for range 2 {
		go func() { errs <- run() }()
	}
	require.NoError(t, <-errs)
	require.NoError(t, <-errs)

	ctx := t.Context()
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer func() { _ = conn.Close(ctx) }()
	var schemas int
	require.NoError(t, conn.QueryRow(ctx,
		`SELECT count(*) FROM pg_namespace WHERE nspname = ANY($1)`, services.Names()).Scan(&schemas))
	require.Equal(t, len(services.Names()), schemas, "every service owns its schema")
}

func TestBadConfigurationNamesTheVariable(t *testing.T) {
	t.Parallel()
	cmd := exec.CommandContext(t.Context(), binary, "dev")
	cmd.Env = append(os.Environ(), "BACKPLANE_LOG_LEVEL=chatty", "BACKPLANE_SHUTDOWN_TIMEOUT=soon")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	require.Equal(t, 2, exit.ExitCode())
	require.Contains(t, string(out), "BACKPLANE_LOG_LEVEL")
	require.Contains(t, string(out), "BACKPLANE_SHUTDOWN_TIMEOUT")
}

// A service's bad setting stops the start like the process's own do, before any
// database, Redis or listener is opened: the database URL points at a closed port, and
// nothing tries it.
func TestBadServiceSettingStopsTheStartBeforeAnythingOpens(t *testing.T) {
	t.Parallel()
	t.Run("dev names every bad setting and opens nothing", func(t *testing.T) {
		closed := freeAddr(t)
		cmd := execDev(t, "postgres://postgres@"+closed+"/backplane?sslmode=disable",
			"BACKPLANE_NOTIFY_MAX_ATTEMPTS=zero", "BACKPLANE_ACCESS_TOKEN_TTL=forever", "BACKPLANE_LOG_LEVEL=chatty")
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, "%s", out)
		require.Equal(t, 2, exit.ExitCode(), "%s", out)
		for _, want := range []string{"BACKPLANE_NOTIFY_MAX_ATTEMPTS", "BACKPLANE_ACCESS_TOKEN_TTL", "BACKPLANE_LOG_LEVEL"} {
			require.Contains(t, string(out), want, "every bad setting is named at once")
		}
		for _, never := range []string{closed, "connect", "migrat", "listening"} {
			require.NotContains(t, string(out), never, "nothing is opened before the configuration is good")
		}
	})
	t.Run("serve reads only its own service's settings, with the process's requirements", func(t *testing.T) {
		cmd := exec.CommandContext(t.Context(), binary, "serve", "notification")
		cmd.Env = append(os.Environ(), "BACKPLANE_NOTIFY_LEASE=1s", "BACKPLANE_ACCESS_TOKEN_TTL=forever",
			"BACKPLANE_DATABASE_URL=", "BACKPLANE_AUTH_ADDR=")
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, "%s", out)
		require.Equal(t, 2, exit.ExitCode(), "%s", out)
		require.Contains(t, string(out), "BACKPLANE_NOTIFY_LEASE")
		require.Contains(t, string(out), "BACKPLANE_DATABASE_URL is required", "with what serve mode lacks")
		require.NotContains(t, string(out), "BACKPLANE_ACCESS_TOKEN_TTL", "auth's settings are not notification's")
	})
}

func TestServeNeverFallsBack(t *testing.T) {
	t.Parallel()
	t.Run("what a piece needs must be set", func(t *testing.T) {
		cmd := exec.CommandContext(t.Context(), binary, "serve", "auth")
		cmd.Env = append(os.Environ(), "BACKPLANE_DATABASE_URL=", "BACKPLANE_REDIS_URL=", "BACKPLANE_NOTIFICATION_ADDR=", "BACKPLANE_KEY_ENCRYPTION_KEY=")
		out, err := cmd.CombinedOutput()
		require.Error(t, err)
		for _, want := range []string{"BACKPLANE_DATABASE_URL", "BACKPLANE_REDIS_URL", "BACKPLANE_NOTIFICATION_ADDR", "BACKPLANE_PUBLIC_URL", "BACKPLANE_KEY_ENCRYPTION_KEY"} {
			require.Contains(t, string(out), want)
		}
	})
	t.Run("an unknown piece", func(t *testing.T) {
		out, err := exec.CommandContext(t.Context(), binary, "serve", "nonsense").CombinedOutput()
		require.Error(t, err)
		require.Contains(t, string(out), "unknown piece")
	})
}

func TestVersionAndUsage(t *testing.T) {
	t.Parallel()
	t.Run("version", func(t *testing.T) {
		out, err := exec.CommandContext(t.Context(), binary, "version").CombinedOutput()
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(string(out), "backplane "))
	})
	t.Run("help", func(t *testing.T) {
		out, err := exec.CommandContext(t.Context(), binary, "help").CombinedOutput()
		require.NoError(t, err)
		for _, piece := range append(services.Names(), "gateway") {
			require.Contains(t, string(out), piece, "the usage text names every piece")
		}
	})
	t.Run("an unknown command", func(t *testing.T) {
		out, err := exec.CommandContext(t.Context(), binary, "frobnicate").CombinedOutput()
		require.Error(t, err)
		require.Contains(t, string(out), "unknown command")
	})
}

// execDev prepares `backplane dev` on free ports, for tests that expect it to fail.
func execDev(t *testing.T, databaseURL string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), binary, "dev")
	cmd.Env = append(os.Environ(),
		"BACKPLANE_DATABASE_URL="+databaseURL,
		"BACKPLANE_HTTP_ADDR="+freeAddr(t),
		"BACKPLANE_GRPC_ADDR="+freeAddr(t),
		"BACKPLANE_ADMIN_ADDR="+freeAddr(t),
		"BACKPLANE_DATA_DIR="+t.TempDir(),
		"BACKPLANE_REDIS_URL=",
	)
	cmd.Env = append(cmd.Env, env...)
	return cmd
}
