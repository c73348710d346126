package password

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/services/auth/password/internal/argon2"
)

const (
	testWait = 10 * time.Second
	testTick = time.Millisecond
)

// holdWorker keeps one of p's workers busy until the returned function is called.
func holdWorker(t *testing.T, p *pool) (release func()) {
	t.Helper()
	started, done := make(chan struct{}), make(chan struct{})
	go func() {
		_ = p.do(context.Background(), func(func(), *argon2.Memory) {
			close(started)
			<-done
		})
	}()
	<-started
	return sync1(func() { close(done) })
}

// sync1 makes f safe to call more than once.
func sync1(f func()) func() {
	var once atomic.Bool
	return func() {
		if once.CompareAndSwap(false, true) {
			f()
		}
	}
}

// queued is how many jobs wait in p's queue.
func queued(p *pool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.queue)
}

// TestCancelledWhileQueued: a caller whose context ends while its computation waits for
// a worker gets its error back while the worker is still busy, so without waiting for
// any hash, and its computation never runs.
func TestCancelledWhileQueued(t *testing.T) {
	t.Parallel()
	p := newPool(1, newYieldPolicy())
	release := holdWorker(t, p)
	defer release()

	ctx, cancel := context.WithCancel(context.Background())
	var ran atomic.Bool
	errc := make(chan error, 1)
	go func() { errc <- p.do(ctx, func(func(), *argon2.Memory) { ran.Store(true) }) }()
	require.Eventually(t, func() bool { return queued(p) == 1 }, testWait, testTick)
	cancel()
	// The only worker is still held: this returns only if do did not wait for it.
	require.ErrorIs(t, <-errc, context.Canceled)

	release()
	require.NoError(t, p.do(context.Background(), func(func(), *argon2.Memory) {}), "the worker goes on after skipping the abandoned job")
	require.False(t, ran.Load(), "an abandoned computation never runs")
}

// TestWorkersEndWhenIdle: workers end after their linger, so a hasher nobody uses holds
// no thread, and the Ps they added to GOMAXPROCS are given back.
func TestWorkersEndWhenIdle(t *testing.T) {
	t.Parallel()
	p := newPool(2, newYieldPolicy())
	p.linger = 0
	require.NoError(t, p.do(t.Context(), func(func(), *argon2.Memory) {}))
	require.Eventually(t, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.workers == 0
	}, testWait, testTick)
}

// TestPanicReachesTheCaller: a computation that panics panics on the caller's goroutine,
// where the server's recovery handles it, and the worker lives on.
func TestPanicReachesTheCaller(t *testing.T) {
	t.Parallel()
	p := newPool(1, newYieldPolicy())
	require.PanicsWithValue(t, "boom", func() { _ = p.do(t.Context(), func(func(), *argon2.Memory) { panic("boom") }) })
	require.NoError(t, p.do(t.Context(), func(func(), *argon2.Memory) {}))
}

// TestWorkerKeepsMemory: a worker hands every computation it runs the same memory,
// kept from one to the next.
func TestWorkerKeepsMemory(t *testing.T) {
	t.Parallel()
	p := newPool(1, newYieldPolicy())
	p.keepKiB = 64
	var mems []*argon2.Memory
	for range 3 {
		require.NoError(t, p.do(t.Context(), func(_ func(), mem *argon2.Memory) { mems = append(mems, mem) }))
	}
	require.NotNil(t, mems[0])
	require.Same(t, mems[0], mems[1])
	require.Same(t, mems[0], mems[2])
}
