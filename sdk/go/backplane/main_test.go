package backplane_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/dbtest"
	"github.com/backplane/backplane/sdk/go/backplane"
)

// The tests run the SDK against the real product: TestMain builds the root module's
// backplane command and starts one `backplane dev` that most tests, the examples and
// the benchmark share; tests that need other settings start their own.
var (
	// binary is the backplane command built for this run.
	binary string
	// target is the gRPC front door of the shared `backplane dev`. The examples call it
	// too, so that they run as tests; in a program it is an address such as
	// "api.example.com:443".
	target string
	// shared is that process.
	shared *devServer
)

// sharedEnv configures the shared server: a refresh token presented twice ends its
// session at once (no grace window), so any second refresh a client made would fail
// the test that made it; rate limits high enough that concurrent tests and the
// benchmark never meet them.
var sharedEnv = []string{
	"BACKPLANE_REFRESH_REUSE_GRACE=0",
	"BACKPLANE_RATE_LIMIT_AUTHENTICATED=100000/s",
	"BACKPLANE_RATE_LIMIT_ANONYMOUS=100000/s",
}

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	tb := &mainTB{}
	defer tb.cleanup()
	dir, err := os.MkdirTemp("", "backplane-sdk")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	binary = filepath.Join(dir, "backplane")
	if err := buildBackplane(binary); err != nil {
		fmt.Fprintln(os.Stderr, "build backplane:", err)
		return 1
	}
	if shared, err = startDev(tb, sharedEnv...); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	target = shared.grpc
	if err := seedExampleAccount(); err != nil {
		fmt.Fprintln(os.Stderr, "sign up the examples' account:", err)
		return 1
	}
	return m.Run()
}

// seedExampleAccount signs up the account the examples sign in to, and verifies it.
func seedExampleAccount() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := backplane.New(target, backplane.WithPlaintext())
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	if _, err = c.SignUp(ctx, &authv1.SignUpRequest{
		Email: "ada@example.com", Password: "correct horse battery staple", DisplayName: "Ada Lovelace",
	}); err != nil {
		return err
	}
	// ExampleWithAPIKey creates a key, which takes a verified address.
	return verifyAddress(ctx, c, shared.dataDir, "ada@example.com")
}

// buildBackplane builds cmd/backplane from the root module this module's replace
// points at, so that the SDK is tested against the server of the same commit.
func buildBackplane(out string) error {
	ctx := context.Background()
	root, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "github.com/backplane/backplane").Output()
	if err != nil {
		return fmt.Errorf("find the root module: %w", err)
	}
	build := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/backplane")
	build.Dir = strings.TrimSpace(string(root))
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	return build.Run()
}

// mainTB is the testing.TB that TestMain lacks, for the helpers the shared server is
// built with (dbtest's database); it implements what they use. Cleanups run when
// TestMain returns.
type mainTB struct {
	testing.TB // nil: calling a method not implemented below is a bug in this file
	cleanups   []func()
}

func (tb *mainTB) Helper()                    {}
func (tb *mainTB) Cleanup(f func())           { tb.cleanups = append(tb.cleanups, f) }
func (tb *mainTB) Logf(f string, args ...any) { fmt.Fprintf(os.Stderr, f+"\n", args...) }

// Fatalf cannot stop TestMain's goroutine the way it stops a test's: it cleans up and
// exits.
func (tb *mainTB) Fatalf(f string, args ...any) {
	fmt.Fprintf(os.Stderr, f+"\n", args...)
	tb.cleanup()
	os.Exit(1)
}

func (tb *mainTB) cleanup() {
	for i := len(tb.cleanups) - 1; i >= 0; i-- {
		tb.cleanups[i]()
	}
	tb.cleanups = nil
}

// devServer is a running `backplane dev`.
type devServer struct {
	grpc, http, admin string
	dataDir           string
	cmd               *exec.Cmd
	out               *syncBuffer
	exited            chan struct{} // closed when the process has exited, after waitErr is set
	waitErr           error
}

// startDev runs `backplane dev` on a private database, data directory and free ports,
// with env added to its environment, and waits until /readyz answers 200. The process
// is killed when tb ends.
func startDev(tb testing.TB, env ...string) (*devServer, error) {
	dataDir, err := os.MkdirTemp("", "backplane-sdk-data")
	if err != nil {
		return nil, err
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dataDir) })
	s := &devServer{dataDir: dataDir, out: &syncBuffer{}, exited: make(chan struct{})}
	for _, addr := range []*string{&s.grpc, &s.http, &s.admin} {
		if *addr, err = freeAddr(); err != nil {
			return nil, err
		}
	}
	s.cmd = exec.CommandContext(context.Background(), binary, "dev")
	s.cmd.Env = append(os.Environ(),
		"BACKPLANE_DATABASE_URL="+dbtest.NewDatabase(tb),
		"BACKPLANE_HTTP_ADDR="+s.http,
		"BACKPLANE_GRPC_ADDR="+s.grpc,
		"BACKPLANE_ADMIN_ADDR="+s.admin,
		"BACKPLANE_DATA_DIR="+dataDir,
		"BACKPLANE_REDIS_URL=",
		"BACKPLANE_LOG_LEVEL=warn",
	)
	s.cmd.Env = append(s.cmd.Env, env...)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	tb.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		<-s.exited
	})
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return nil, fmt.Errorf("backplane dev exited early: %w\n%s", s.waitErr, s.out.String())
		default:
		}
		if ready(s.admin) {
			return s, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, fmt.Errorf("backplane dev was not ready within 60s\n%s", s.out.String())
}

func ready(admin string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
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
