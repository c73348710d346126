// Package stripetest gives tests what Stripe would be: stripe-mock, Stripe's own
// stateless server that checks each request against the API's OpenAPI spec, and Fake,
// a stateful stand-in that remembers what was created so that flows (a checkout
// completed, a subscription re-fetched after a webhook) can be followed end to end.
// Nothing here ever calls Stripe's real network.
//
// It is test code: depguard keeps it out of production packages.
package stripetest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// MockVersion is the stripe-mock release pinned in tools/go.mod. It speaks API version
// 2023-10-16, the one stripe-go v76 pins, and still serves usage records.
const MockVersion = "v0.180.0"

// mockPath builds stripe-mock from tools/go.mod (once per test process; Go caches the
// binary across processes) and returns its path.
var mockPath = sync.OnceValues(func() (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	//nolint:gosec // G204: the go command on the pinned tools module, nothing from outside.
	cmd := exec.CommandContext(ctx, "go", "tool", "-modfile="+filepath.Join(root, "tools", "go.mod"), "-n", "github.com/stripe/stripe-mock")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("build stripe-mock from tools/go.mod: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
})

// repoRoot is the directory holding tools/go.mod, above the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "tools", "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("stripetest: no tools/go.mod above the working directory")
		}
		dir = parent
	}
}

// Mock starts stripe-mock on a free port of 127.0.0.1, with the API version of every
// request checked against its spec, and returns its base URL. It stops when the test
// ends.
func Mock(t testing.TB) string {
	t.Helper()
	bin, err := mockPath()
	if err != nil {
		t.Fatalf("stripetest: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	// Both listeners on loopback with ports of the system's choosing: stripe-mock would
	// otherwise serve HTTPS on every interface, on a fixed port.
	//nolint:gosec // G204: bin is the stripe-mock go built from tools/go.mod.
	cmd := exec.CommandContext(ctx, bin, "-http-addr", "127.0.0.1:", "-https-addr", "127.0.0.1:", "-strict-version-check")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatalf("stripetest: %v", err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("stripetest: start stripe-mock: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		const prefix = "Listening for HTTP at address: "
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if _, after, ok := strings.Cut(sc.Text(), prefix); ok {
				addr <- strings.TrimSpace(after)
			}
		}
	}()
	select {
	case a := <-addr:
		return "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatalf("stripetest: stripe-mock did not start listening within 30s")
		return ""
	}
}
