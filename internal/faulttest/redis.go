package faulttest

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a private redis-server of one test, which it may kill and start again, empty,
// on the same port: what a Redis without persistence does when its host restarts.
type Redis struct {
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

// StartRedis starts redis-server on a free loopback port, without persistence, and
// waits until it answers; it is killed when the test ends.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("faulttest: redis-server is required: %v", err)
	}
	r := &Redis{port: freePort(t)}
	t.Cleanup(func() {
		if r.cmd != nil {
			r.Kill(t)
		}
	})
	r.Start(t)
	return r
}

// Addr is the server's host:port.
func (r *Redis) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) }

// URL is the server's redis:// URL.
func (r *Redis) URL() string { return "redis://" + r.Addr() + "/0" }

// Start starts the server on its port and waits until it answers PING.
func (r *Redis) Start(t testing.TB) {
	t.Helper()
	r.cmd = exec.CommandContext(context.Background(), "redis-server", //nolint:gosec // G204: a fixed program, our own port
		"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	r.done = make(chan struct{})
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("faulttest: start redis-server: %v", err)
	}
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(r.cmd, r.done)
	client := redis.NewClient(&redis.Options{Addr: r.Addr(), MaxRetries: -1})
	defer func() { _ = client.Close() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := client.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("faulttest: redis-server on %s did not answer within 10s: %v", r.Addr(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill kills the server with SIGKILL and waits for it to die: its connections are cut
// and everything it held is gone.
func (r *Redis) Kill(t testing.TB) {
	t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("faulttest: kill redis-server: %v", err)
	}
	<-r.done
	r.cmd = nil
}
