package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/backplane/backplane/internal/plans/planstest"
)

// process is a child process whose output is kept for when it fails.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *lockedBuffer
	// ready receives the first stdout line that starts with "ready ".
	ready chan string
	// done is closed once the process has exited.
	done chan struct{}
}

// pid is the process's id, for reading its CPU time.
func (p *process) pid() int { return p.cmd.Process.Pid }

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	// head keeps the first headMax bytes, where the start-up lines are.
	head bytes.Buffer
}

const headMax = 1 << 20

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := headMax - b.head.Len(); room > 0 {
		b.head.Write(p[:min(room, len(p))])
	}
	return b.buf.Write(p)
}

// Head returns the start of the output.
func (b *lockedBuffer) Head() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.head.String()
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	if len(s) > 4000 {
		s = "…" + s[len(s)-4000:]
	}
	return s
}

func start(ctx context.Context, name string, env []string, bin string, args ...string) (*process, error) {
	p := &process{name: name, out: &lockedBuffer{}, ready: make(chan string, 1), done: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, bin, args...) //nolint:gosec // the harness runs the binary it is told to measure, and itself
	p.cmd.Cancel = func() error { return p.cmd.Process.Signal(syscall.SIGTERM) }
	p.cmd.WaitDelay = 10 * time.Second
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stderr = p.out
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	lines := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			_, _ = p.out.Write([]byte(line + "\n"))
			if strings.HasPrefix(line, "ready ") {
				select {
				case p.ready <- strings.TrimPrefix(line, "ready "):
				default:
				}
			}
		}
		close(lines)
	}()
	go func() {
		<-lines // Wait closes stdout: read it to its end first.
		_ = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// stop ends the process with SIGTERM, and SIGKILL if it has not exited 15 s later.
func (p *process) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		fmt.Fprintf(os.Stderr, "%s did not stop within 15s of SIGTERM; killed\n", p.name)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// waitLine waits for the process's "ready ..." line.
func (p *process) waitLine(ctx context.Context) (string, error) {
	select {
	case l := <-p.ready:
		return l, nil
	case <-p.done:
		return "", fmt.Errorf("%s exited:\n%s", p.name, p.out.String())
	case <-time.After(60 * time.Second):
		return "", fmt.Errorf("%s did not say ready within 60s:\n%s", p.name, p.out.String())
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// waitOK polls url until it answers 200.
func (p *process) waitOK(ctx context.Context, url string) error {
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited:\n%s", p.name, p.out.String())
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s: %s did not answer 200 within 90s:\n%s", p.name, url, p.out.String())
}

func freeAddr(ctx context.Context) (string, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String(), nil
}

// freshDatabase creates an empty database on the server at serverURL and returns its URL
// and a function that drops it.
func freshDatabase(ctx context.Context, serverURL string) (string, func(context.Context), error) {
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return "", nil, fmt.Errorf("postgres: %w", err)
	}
	name := fmt.Sprintf("bench_e2e_%d_%d", os.Getpid(), time.Now().Unix())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		_ = conn.Close(ctx)
		return "", nil, fmt.Errorf("create database: %w", err)
	}
	u, err := url.Parse(serverURL)
	if err != nil {
		_ = conn.Close(ctx)
		return "", nil, err
	}
	u.Path = "/" + name
	drop := func(ctx context.Context) {
		_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		_ = conn.Close(ctx)
	}
	return u.String(), drop, nil
}

// backplaneDev is a running `backplane dev`.
type backplaneDev struct {
	*process
	http, grpc, admin string
	dataDir           string
}

func startDev(ctx context.Context, o options, bin, dataDir, databaseURL string) (*backplaneDev, error) {
	d := &backplaneDev{}
	var err error
	for _, a := range []*string{&d.http, &d.grpc, &d.admin} {
		if *a, err = freeAddr(ctx); err != nil {
			return nil, err
		}
	}
	bin, err = filepath.Abs(bin)
	if err != nil {
		return nil, err
	}
	catalog, err := planstest.LiftedCatalog(o.catalog, dataDir)
	if err != nil {
		return nil, err
	}
	d.process, err = start(ctx, "backplane dev", []string{
		"BACKPLANE_DATABASE_URL=" + databaseURL,
		"BACKPLANE_HTTP_ADDR=" + d.http,
		"BACKPLANE_GRPC_ADDR=" + d.grpc,
		"BACKPLANE_ADMIN_ADDR=" + d.admin,
		"BACKPLANE_DATA_DIR=" + dataDir,
		"BACKPLANE_REDIS_URL=" + o.redis,
		// The limiter still decides every call (one Redis round trip); only its refusal is
		// lifted, since one user at full load is what is measured.
		"BACKPLANE_RATE_LIMIT_AUTHENTICATED=" + o.rateLimit,
		"BACKPLANE_CATALOG_FILE=" + catalog,
		// Known to the harness, so that it can call auth directly as the edge does.
		"BACKPLANE_SERVICE_TOKEN_SECRET=" + serviceSecret,
		"BACKPLANE_PPROF=true",
		// The benchmark's account is signed in at sign-up, without the emailed link.
		"BACKPLANE_SIGNUP_MODE=instant",
	}, bin, "dev")
	if err != nil {
		return nil, err
	}
	if err := d.waitOK(ctx, "http://"+d.admin+"/readyz"); err != nil {
		d.stop()
		return nil, err
	}
	d.dataDir = dataDir
	return d, nil
}

// serviceSecret is the BACKPLANE_SERVICE_TOKEN_SECRET of every process the harness
// starts.
const serviceSecret = "bench-e2e-service-secret-0123456789abcdef"

// listening returns the address the process logged for its gRPC server named server.
func (p *process) listening(server string) (string, error) {
	re := regexp.MustCompile(`"msg":"grpc server listening"[^\n]*"server":"` + regexp.QuoteMeta(server) + `"[^\n]*"addr":"([^"]+)"`)
	m := re.FindStringSubmatch(p.out.Head())
	if m == nil {
		return "", fmt.Errorf("%s: no \"grpc server listening\" line for %s", p.name, server)
	}
	return m[1], nil
}

// signUp creates an account through the REST door and returns its access token.
func signUp(ctx context.Context, base string) (string, error) {
	body := `{"email":"ada@example.com","password":"correct horse battery","displayName":"Ada"}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/auth/signup", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("sign-up: %s: %s", resp.Status, raw)
	}
	var out struct {
		AccessToken string `json:"accessToken"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || out.AccessToken == "" {
		return "", errors.Join(fmt.Errorf("sign-up answered no access token: %s", raw), err)
	}
	return out.AccessToken, nil
}
