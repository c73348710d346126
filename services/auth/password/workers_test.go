package password

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
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
		_ = p.do(context.Background(), func(func() bool, *argon2.Memory) bool {
			close(started)
			<-done
			return true
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

// nothing is a computation that does nothing.
func nothing(func() bool, *argon2.Memory) bool { return true }

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
	p := newPool(1, true)
	release := holdWorker(t, p)
	defer release()

	ctx, cancel := context.WithCancel(context.Background())
	var ran atomic.Bool
	errc := make(chan error, 1)
	go func() { errc <- p.do(ctx, func(func() bool, *argon2.Memory) bool { ran.Store(true); return true }) }()
	require.Eventually(t, func() bool { return queued(p) == 1 }, testWait, testTick)
	cancel()
	// The only worker is still held: this returns only if do did not wait for it.
	require.ErrorIs(t, <-errc, context.Canceled)

	release()
	require.NoError(t, p.do(context.Background(), nothing), "the worker goes on after skipping the abandoned job")
	require.False(t, ran.Load(), "an abandoned computation never runs")
}

// TestWorkersEndWhenIdle: workers end after their linger, so a hasher nobody uses holds
// no thread, and the Ps they added to GOMAXPROCS are given back.
func TestWorkersEndWhenIdle(t *testing.T) {
	t.Parallel()
	p := newPool(2, true)
	p.linger = 0
	require.NoError(t, p.do(t.Context(), nothing))
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
	p := newPool(1, true)
	require.PanicsWithValue(t, "boom", func() { _ = p.do(t.Context(), func(func() bool, *argon2.Memory) bool { panic("boom") }) })
	require.NoError(t, p.do(t.Context(), nothing))
}

// TestWorkerKeepsMemory: a worker hands every computation it runs the same memory,
// kept from one to the next.
func TestWorkerKeepsMemory(t *testing.T) {
	t.Parallel()
	p := newPool(1, true)
	p.keepKiB = 64
	var mems []*argon2.Memory
	for range 3 {
		require.NoError(t, p.do(t.Context(), func(_ func() bool, mem *argon2.Memory) bool {
			mems = append(mems, mem)
			return true
		}))
	}
	require.NotNil(t, mems[0])
	require.Same(t, mems[0], mems[1])
	require.Same(t, mems[0], mems[2])
}

// TestStarvationJudgesTheShareOfTheCPU: a hash is not judged before its time, and then is
// starved once it has had less than a quarter of the time since it started.
func TestStarvationJudgesTheShareOfTheCPU(t *testing.T) {
	t.Parallel()
	start := time.Unix(1_700_000_000, 0)
	wall, cpu := start, 7*time.Second // a thread's CPU time is counted from its own start
	s := &starvation{
		after: 100 * time.Millisecond,
		now:   func() time.Time { return wall },
		cpu:   func() (time.Duration, error) { return cpu, nil },
	}
	check := s.watch()
	require.NotNil(t, check)

	wall = start.Add(99 * time.Millisecond)
	require.True(t, check(), "not judged before its time, however little it has had")
	wall, cpu = start.Add(120*time.Millisecond), 7*time.Second+30*time.Millisecond
	require.True(t, check(), "a quarter of the time is enough")
	wall = start.Add(121 * time.Millisecond)
	require.False(t, check(), "less than a quarter is starved")

	unreadable := &starvation{after: 0, now: time.Now, cpu: func() (time.Duration, error) { return 0, errors.New("no clock") }}
	require.Nil(t, unreadable.watch(), "with no CPU clock, nothing judges the hash: it computes to its end")
}

// TestWorkersAtNormalPriorityWhereTheyCannotBeLowered: where a thread's priority cannot
// be lowered, the pool says so once, however many workers start, and computes every job
// to its end, unjudged.
func TestWorkersAtNormalPriorityWhereTheyCannotBeLowered(t *testing.T) {
	t.Parallel()
	p := newPool(3, true)
	p.lower = func() error { return errors.ErrUnsupported }
	var told atomic.Int32
	var why atomic.Value
	p.lowerFailed = func(err error) {
		why.Store(err)
		told.Add(1)
	}
	var judged atomic.Bool
	var jobs sync.WaitGroup
	for range 9 {
		jobs.Go(func() {
			assert.NoError(t, p.do(t.Context(), func(check func() bool, _ *argon2.Memory) bool {
				judged.CompareAndSwap(false, check != nil)
				time.Sleep(time.Millisecond) // so that workers overlap
				return true
			}))
		})
	}
	jobs.Wait()
	require.Equal(t, int32(1), told.Load())
	require.ErrorIs(t, why.Load().(error), errors.ErrUnsupported)
	require.False(t, judged.Load(), "a computation at normal priority is not judged")
}
