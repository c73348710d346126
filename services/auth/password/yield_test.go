package password

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/services/auth/password/internal/argon2"
)

// fakeYields is a yield policy whose other work is a number the test sets and whose
// clock moves only when a hash sleeps, by exactly the time asked for: held-back time is
// counted, never measured.
type fakeYields struct {
	*yieldPolicy
	other  atomic.Int64
	mu     sync.Mutex
	clock  time.Time
	sleeps []time.Duration
	// onSleep, if set, runs inside each sleep, after the clock has moved.
	onSleep func(n int)
}

func newFakeYields(limit, poll time.Duration) *fakeYields {
	f := &fakeYields{clock: time.Unix(0, 0)}
	f.yieldPolicy = &yieldPolicy{
		limit: limit, poll: poll,
		otherWork: func() int { return int(f.other.Load()) },
		now: func() time.Time {
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.clock
		},
		sleep: func(d time.Duration) {
			f.mu.Lock()
			f.clock = f.clock.Add(d)
			f.sleeps = append(f.sleeps, d)
			n := len(f.sleeps)
			f.mu.Unlock()
			if f.onSleep != nil {
				f.onSleep(n)
			}
		},
	}
	return f
}

func (f *fakeYields) slept() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.sleeps...)
}

// TestYieldPausesWhileOtherWork: a hash does not pause while the process has no other
// work, nor for work seen at one look only; it pauses once work is seen at two looks in
// a row, stays paused while it lasts and goes on as soon as it has drained; while
// paused it does not count as computing.
// Not parallel: it reads the process-wide count of computing hashes.
func TestYieldPausesWhileOtherWork(t *testing.T) {
	f := newFakeYields(time.Second, time.Millisecond)
	h := f.start()
	defer h.end()
	computingNow := computing.Load()

	h.yield()
	require.Empty(t, f.slept(), "no other work: no pause")

	var whilePaused []int64
	f.onSleep = func(n int) {
		whilePaused = append(whilePaused, computing.Load())
		if n == 3 {
			f.other.Store(0) // the other work drains during the third pause
		}
	}
	f.other.Store(2)
	h.yield()
	require.Empty(t, f.slept(), "other work at one look only: no pause yet")
	f.other.Store(0)
	h.yield()
	f.other.Store(2)
	h.yield()
	require.Empty(t, f.slept(), "gone at the next look, and back: still one look")
	h.yield()
	require.Equal(t, []time.Duration{time.Millisecond, time.Millisecond, time.Millisecond}, f.slept(),
		"paused until the other work drained, and no longer")
	require.Equal(t, 3, h.pauses)
	require.Equal(t, 3*time.Millisecond, h.held)
	require.Equal(t, []int64{computingNow - 1, computingNow - 1, computingNow - 1}, whilePaused,
		"a paused hash is not counted as computing")
	require.Equal(t, computingNow, computing.Load(), "computing again once it goes on")

	h.yield()
	require.Len(t, f.slept(), 3, "nothing to step aside for: no pause")
}

// TestHoldBackIsBounded: with other work that never drains, a hash is held back for the
// limit in all, the last pause cut short to fit, and then computes to the end without
// pausing again.
func TestHoldBackIsBounded(t *testing.T) {
	t.Parallel()
	const limit, poll = 10 * time.Millisecond, 3 * time.Millisecond
	f := newFakeYields(limit, poll)
	f.other.Store(1)
	h := f.start()
	for range 1000 {
		h.yield()
	}
	h.end()
	require.Equal(t, []time.Duration{poll, poll, poll, limit - 3*poll}, f.slept())
	require.Equal(t, limit, h.held)
}

// TestHashCompletesDespiteBusyProcess runs a real hash through a pool whose process
// never stops being busy: it is held back exactly its limit, completes, and its key is
// the one computed without yielding.
func TestHashCompletesDespiteBusyProcess(t *testing.T) {
	t.Parallel()
	const limit, poll = 5 * time.Millisecond, time.Millisecond
	f := newFakeYields(limit, poll)
	f.other.Store(1)
	var held []time.Duration
	var mu sync.Mutex
	f.heldBack = func(d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		held = append(held, d)
	}
	p := newPool(1, f.yieldPolicy)

	pw, salt := []byte("password"), []byte("saltsaltsaltsalt")
	var key []byte
	// 16 passes over 64 KiB: 1022 blocks filled, 7 yields, more than the 5 pauses the
	// limit allows.
	require.NoError(t, p.do(t.Context(), func(yield func()) {
		key = argon2.IDKeyYielding(pw, salt, 16, 64, 1, 32, yield)
	}))
	require.Equal(t, argon2.IDKey(pw, salt, 16, 64, 1, 32), key)
	require.Len(t, f.slept(), 5)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []time.Duration{limit}, held)
}

// TestPausedHashResumesWhenWorkDrains holds a hash, from the pool's worker, in a pause
// for as long as the test keeps other work up, and sees it finish once the work is gone,
// well inside its allowance.
func TestPausedHashResumesWhenWorkDrains(t *testing.T) {
	t.Parallel()
	f := newFakeYields(time.Hour, time.Millisecond)
	f.other.Store(1)
	paused := make(chan struct{})
	resume := make(chan struct{})
	f.onSleep = func(n int) {
		if n == 1 {
			close(paused)
		}
		<-resume
	}
	p := newPool(1, f.yieldPolicy)

	done := make(chan error, 1)
	go func() {
		done <- p.do(t.Context(), func(yield func()) {
			argon2.IDKeyYielding([]byte("password"), []byte("saltsaltsaltsalt"), 1, 1024, 1, 32, yield)
		})
	}()
	<-paused
	select {
	case err := <-done:
		t.Fatalf("the hash finished while paused: %v", err)
	default:
	}
	f.other.Store(0)
	close(resume)
	require.NoError(t, <-done)
	require.Len(t, f.slept(), 1, "one pause: the work had drained when it ended")
}

// TestOtherGoroutinesSeesBusyWork: from inside a hash's account, the runtime's counts
// show goroutines spinning beside it as other work, and none once they stop (the hash
// itself never counts).
// Not parallel: other tests' goroutines would be other work too.
func TestOtherGoroutinesSeesBusyWork(t *testing.T) {
	require.True(t, goroutineStatesSupported())
	h := newYieldPolicy().start()
	defer h.end()

	stop := make(chan struct{})
	var busy sync.WaitGroup
	for range 2 {
		busy.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					runtime.Gosched()
				}
			}
		})
	}
	// Polled from this goroutine, the hash's own (require.Eventually would ask from one
	// of its own, which is other work).
	seen := func(want func(n int) bool) bool {
		for deadline := time.Now().Add(testWait); time.Now().Before(deadline); time.Sleep(testTick) {
			if want(otherGoroutines()) {
				return true
			}
		}
		return false
	}
	require.True(t, seen(func(n int) bool { return n > 0 }), "busy goroutines are other work")
	close(stop)
	busy.Wait()
	require.True(t, seen(func(n int) bool { return n <= 0 }), "with them gone, the hash alone is left")
}

// TestHashBesideBusyLoops is the faults suite's busy machine at its worst for hashing:
// eight goroutines of the same process spinning for as long as the hash runs, so that
// there is always other work to step aside for. The hash steps aside, then, its
// allowance spent, completes with the key computed without yielding.
func TestHashBesideBusyLoops(t *testing.T) {
	t.Parallel()
	y := newYieldPolicy()
	var held atomic.Int64
	y.heldBack = func(d time.Duration) { held.Store(int64(d)) }
	p := newPool(1, y)

	stop := make(chan struct{})
	var busy sync.WaitGroup
	for range 8 {
		busy.Go(func() {
			for n := 0; ; n++ {
				if n%1024 == 0 {
					select {
					case <-stop:
						return
					default:
					}
				}
			}
		})
	}
	defer busy.Wait()
	defer close(stop)

	pw, salt := []byte("password"), []byte("saltsaltsaltsalt")
	var key []byte
	require.NoError(t, p.do(t.Context(), func(yield func()) {
		key = argon2.IDKeyYielding(pw, salt, 4, 1024, 1, 32, yield)
	}))
	require.Equal(t, argon2.IDKey(pw, salt, 4, 1024, 1, 32), key)
	require.Positive(t, held.Load(), "the hash stepped aside for the busy loops")
}
