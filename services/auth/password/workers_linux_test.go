package password

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/backplane/backplane/services/auth/password/internal/argon2"
)

// threadNice reads a thread's nice value from /proc/self/task/<tid>/stat, field 19; ok
// is false when the thread has ended meanwhile.
func threadNice(tid int) (nice int, ok bool) {
	b, err := os.ReadFile("/proc/self/task/" + strconv.Itoa(tid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name, field 2, may hold spaces; the fields after it start at 3.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	nice, err = strconv.Atoi(fields[19-3])
	return nice, err == nil
}

// currentNice is the nice value of the thread the calling goroutine runs on.
func currentNice(t *testing.T) int {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	n, ok := threadNice(unix.Gettid())
	require.True(t, ok)
	return n
}

// loweredThreads lists the process's threads whose nice value is hashNice.
func loweredThreads(t *testing.T) []int {
	tasks, err := filepath.Glob("/proc/self/task/*")
	require.NoError(t, err)
	var lowered []int
	for _, task := range tasks {
		tid, err := strconv.Atoi(filepath.Base(task))
		require.NoError(t, err)
		if n, ok := threadNice(tid); ok && n == hashNice {
			lowered = append(lowered, tid)
		}
	}
	return lowered
}

// TestWorkerThreadsRunAtLowPriority reads, from inside each computation, the nice value
// of the thread it runs on, and meanwhile, from ordinary goroutines, that of whichever
// thread each finds itself on: only the workers' threads are lowered, ordinary
// goroutines never run on one, and once the workers end no lowered thread is left.
// Not parallel: the last check looks at every thread of the test process, and the
// other tests' hashers have workers of their own.
func TestWorkerThreadsRunAtLowPriority(t *testing.T) {
	base := currentNice(t)
	require.NotEqual(t, hashNice, base, "the test must not run at the workers' priority already")
	onlyMain := func() bool {
		lowered := loweredThreads(t)
		return len(lowered) == 0 || len(lowered) == 1 && lowered[0] == unix.Getpid()
	}
	// Workers of earlier tests' pools linger a second before they end.
	require.Eventually(t, onlyMain, testWait, testTick, "only a parked main thread may be lowered before the test")

	p := newPool(2, true)
	p.linger = 0
	// Never judged starved: a computation run again would report the ordinary thread of
	// its second run, which is another test's business.
	p.starved.after = time.Hour

	stop := make(chan struct{})
	var ordinary sync.WaitGroup
	var omu sync.Mutex
	var seen []int
	for range 4 {
		ordinary.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				runtime.LockOSThread()
				n, _ := threadNice(unix.Gettid())
				runtime.UnlockOSThread()
				omu.Lock()
				seen = append(seen, n)
				omu.Unlock()
				runtime.Gosched()
			}
		})
	}

	const jobs = 20
	nices := make([]int, jobs)
	tids := make([]int, jobs)
	var hashing sync.WaitGroup
	for i := range jobs {
		hashing.Go(func() {
			err := p.do(t.Context(), func(check func() bool, mem *argon2.Memory) bool {
				tids[i] = unix.Gettid()
				nices[i], _ = threadNice(tids[i])
				// A real hash, so the workers overlap the ordinary goroutines.
				_, done := mem.IDKeyUntil([]byte("password"), []byte("saltsaltsaltsalt"), 1, 1024, 1, 32, check)
				return done
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	hashing.Wait()
	close(stop)
	ordinary.Wait()

	for i := range jobs {
		require.Equal(t, hashNice, nices[i], "the thread computation %d ran on", i)
	}
	require.NotEmpty(t, seen)
	for _, n := range seen {
		require.Equal(t, base, n, "an ordinary goroutine ran on a lowered thread")
	}
	require.Equal(t, base, currentNice(t))
	// The workers end with their threads, and no thread stays lowered but the main
	// thread, which a locked goroutine may have run on: Go parks it for good instead of
	// ending it, so it never runs a goroutine again.
	require.Eventually(t, onlyMain, testWait, testTick)
}

// neverFed judges a thread that never gets the CPU, on a clock that moves a millisecond
// a look: starved at the first check.
func neverFed() *starvation {
	var mu sync.Mutex
	wall := time.Unix(1_700_000_000, 0)
	return &starvation{
		now: func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			wall = wall.Add(time.Millisecond)
			return wall
		},
		cpu: func() (time.Duration, error) { return 0, nil },
	}
}

// TestStarvedHashRunsAgainAtNormalPriority: a hash judged starved on its lowered thread
// stops there and is computed again, whole, on an ordinary thread at normal priority,
// which gives the key; a panic of that second run reaches the caller, and the worker
// goes on.
func TestStarvedHashRunsAgainAtNormalPriority(t *testing.T) {
	t.Parallel()
	base := currentNice(t)
	p := newPool(1, true)
	p.starved = neverFed()
	var restarts atomic.Int32
	p.restarted = func() { restarts.Add(1) }

	type run struct {
		judged bool
		nice   int
	}
	pw, salt := []byte("password"), []byte("saltsaltsaltsalt")
	var runs []run
	var key []byte
	require.NoError(t, p.do(t.Context(), func(check func() bool, mem *argon2.Memory) bool {
		n, ok := threadNice(unix.Gettid())
		require.True(t, ok)
		runs = append(runs, run{judged: check != nil, nice: n})
		var done bool
		key, done = mem.IDKeyUntil(pw, salt, 2, 1024, 1, 32, check)
		return done
	}))
	require.Equal(t, []run{{judged: true, nice: hashNice}, {judged: false, nice: base}}, runs)
	require.Equal(t, argon2.IDKey(pw, salt, 2, 1024, 1, 32), key)
	require.Equal(t, int32(1), restarts.Load())

	require.PanicsWithValue(t, "boom", func() {
		_ = p.do(t.Context(), func(check func() bool, mem *argon2.Memory) bool {
			if check == nil {
				panic("boom")
			}
			_, done := mem.IDKeyUntil(pw, salt, 2, 1024, 1, 32, check)
			return done
		})
	})
	require.NoError(t, p.do(t.Context(), nothing), "the worker goes on")
}

// TestHashBesideBusyLoops is a machine kept busy at normal priority, at its worst for
// hashing: goroutines of the same process spinning on every P the worker does not hold,
// for as long as the hash runs, so that its lowered thread shares a core with one of
// theirs and gets about a tenth of it. The hash is judged starved and computed again at
// normal priority, and gives x/crypto's key.
func TestHashBesideBusyLoops(t *testing.T) {
	t.Parallel()
	p := newPool(1, true)
	var restarts atomic.Int32
	p.restarted = func() { restarts.Add(1) }

	stop := make(chan struct{})
	var busy sync.WaitGroup
	for range 4 * runtime.NumCPU() {
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
	require.NoError(t, p.do(t.Context(), func(check func() bool, mem *argon2.Memory) bool {
		var done bool
		key, done = mem.IDKeyUntil(pw, salt, OWASP.Time, OWASP.Memory, OWASP.Threads, 32, check)
		return done
	}))
	require.Equal(t, argon2.IDKey(pw, salt, OWASP.Time, OWASP.Memory, OWASP.Threads, 32), key)
	require.Equal(t, int32(1), restarts.Load(), "the hash was starved at low priority and computed again")
}
