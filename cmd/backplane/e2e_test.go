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
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/dbtest"
	"github.com/backplane/backplane/services"
)

// binary is the backplane command built once for every test here: these tests run the
// program as an operator would, as a separate process.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "backplane-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "backplane")
	build := exec.Command("go", "build", "-o", binary, ".")
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
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
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

type devProcess struct {
	cmd      *exec.Cmd
	out      *syncBuffer
	http     string
	grpc     string
	admin    string
	dataDir  string
	exited   chan error
	started  time.Time
	readyFor time.Duration
}

// startDev runs `backplane dev` against databaseURL and waits until /readyz answers 200.
func startDev(t testing.TB, databaseURL string, env ...string) *devProcess {
	t.Helper()
	return startDevIn(t, databaseURL, t.TempDir(), nil, env...)
}

// startDevIn runs `backplane dev args...` with dataDir as its data dir.
func startDevIn(t testing.TB, databaseURL, dataDir string, args []string, env ...string) *devProcess {
	t.Helper()
	p := &devProcess{out: &syncBuffer{}, http: freeAddr(t), grpc: freeAddr(t), admin: freeAddr(t), dataDir: dataDir, exited: make(chan error, 1)}
	p.cmd = exec.Command(binary, append([]string{"dev"}, args...)...)
	p.cmd.Env = append(os.Environ(),
		"BACKPLANE_DATABASE_URL="+databaseURL,
		"BACKPLANE_HTTP_ADDR="+p.http,
		"BACKPLANE_GRPC_ADDR="+p.grpc,
		"BACKPLANE_ADMIN_ADDR="+p.admin,
		"BACKPLANE_DATA_DIR="+p.dataDir,
		"BACKPLANE_REDIS_URL=",
	)
	p.cmd.Env = append(p.cmd.Env, env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.started = time.Now()
	require.NoError(t, p.cmd.Start())
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})

	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.exited:
			t.Fatalf("backplane dev exited early: %v\n%s", err, p.out.String())
		default:
		}
		resp, err := http.Get("http://" + p.admin + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			// /readyz answers before the checks are registered: wait for the line that
			// says everything started, too.
			if resp.StatusCode == http.StatusOK && strings.Contains(p.out.String(), "backplane dev is up") {
				p.readyFor = time.Since(p.started)
				return p
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("backplane dev was not ready within 30s\n%s", p.out.String())
	return nil
}

// stop sends SIGTERM and waits for a clean exit.
func (p *devProcess) stop(t testing.TB) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-p.exited:
		require.NoError(t, err, "backplane dev should exit 0 on SIGTERM\n%s", p.out.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("backplane dev did not exit within 30s of SIGTERM\n%s", p.out.String())
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

func TestDevBecomesReadyServesMetricsAndStopsGracefully(t *testing.T) {
	t.Parallel()
	p := startDev(t, dbtest.NewDatabase(t))

	code, body := get(t, "http://"+p.admin+"/healthz")
	require.Equal(t, http.StatusOK, code, body)

	// A call through the REST front door reaches the subscription service over gRPC,
	// which the per-method server metrics then show.
	resp, err := http.Get("http://" + p.http + "/v1/plans")
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.NotEmpty(t, resp.Header.Get("X-Request-Id"))

	// An invalid request is refused at the edge, before any service.
	resp, err = http.Post("http://"+p.http+"/v1/auth/login", "application/json", strings.NewReader(`{"email":"x"}`))
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)

	code, metrics := get(t, "http://"+p.admin+"/metrics")
	require.Equal(t, http.StatusOK, code)
	require.True(t, strings.Contains(metrics, `rpc_method="backplane.subscription.v1.SubscriptionService/ListPlans"`),
		"per-method gRPC server metrics are exported")
	require.True(t, strings.Contains(metrics, "rpc_server_call_duration_seconds_count"), "gRPC server durations are exported")

	p.stop(t)
	require.Contains(t, p.out.String(), "shutting down")
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
		cmd := exec.Command(binary, "migrate")
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

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var schemas int
	require.NoError(t, conn.QueryRow(ctx,
		`SELECT count(*) FROM pg_namespace WHERE nspname = ANY($1)`, services.Names()).Scan(&schemas))
	require.Equal(t, len(services.Names()), schemas, "every service owns its schema")
}

func TestBadConfigurationNamesTheVariable(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(binary, "dev")
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

	// serve reads only its own service's settings, with the process's requirements.
	cmd = exec.Command(binary, "serve", "notification")
	cmd.Env = append(os.Environ(), "BACKPLANE_NOTIFY_LEASE=1s", "BACKPLANE_ACCESS_TOKEN_TTL=forever",
		"BACKPLANE_DATABASE_URL=", "BACKPLANE_AUTH_ADDR=")
	out, err = cmd.CombinedOutput()
	require.ErrorAs(t, err, &exit, "%s", out)
	require.Equal(t, 2, exit.ExitCode(), "%s", out)
	require.Contains(t, string(out), "BACKPLANE_NOTIFY_LEASE")
	require.Contains(t, string(out), "BACKPLANE_DATABASE_URL is required", "with what serve mode lacks")
	require.NotContains(t, string(out), "BACKPLANE_ACCESS_TOKEN_TTL", "auth's settings are not notification's")
}

func TestServeNeverFallsBack(t *testing.T) {
	t.Parallel()
	env := []string{"BACKPLANE_DATABASE_URL=", "BACKPLANE_REDIS_URL=", "BACKPLANE_NOTIFICATION_ADDR="}
	cmd := exec.Command(binary, "serve", "auth")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	require.Error(t, err)
	for _, want := range []string{"BACKPLANE_DATABASE_URL", "BACKPLANE_REDIS_URL", "BACKPLANE_NOTIFICATION_ADDR", "BACKPLANE_PUBLIC_URL"} {
		require.Contains(t, string(out), want)
	}

	cmd = exec.Command(binary, "serve", "nonsense")
	out, err = cmd.CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "unknown piece")
}

func TestVersionAndUsage(t *testing.T) {
	t.Parallel()
	out, err := exec.Command(binary, "version").CombinedOutput()
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(out), "backplane "))

	out, err = exec.Command(binary, "help").CombinedOutput()
	require.NoError(t, err)
	for _, piece := range append(services.Names(), "gateway") {
		require.Contains(t, string(out), piece, "the usage text names every piece")
	}

	out, err = exec.Command(binary, "frobnicate").CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "unknown command")
}

// execDev prepares `backplane dev` on free ports, for tests that expect it to fail.
func execDev(t *testing.T, databaseURL string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(binary, "dev")
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
