package password

import (
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

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
	for _, tid := range loweredThreads(t) {
		require.Equal(t, unix.Getpid(), tid, "only a parked main thread may be lowered before the test")
	}

	p := newPool(2, true, slog.New(slog.DiscardHandler))
	p.linger = 0

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
			err := p.do(t.Context(), func() {
				tids[i] = unix.Gettid()
				nices[i], _ = threadNice(tids[i])
				// A real hash, so the workers overlap the ordinary goroutines.
				argon2.IDKey([]byte("password"), []byte("saltsaltsaltsalt"), 1, 1024, 1, 32)
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
	require.Eventually(t, func() bool {
		lowered := loweredThreads(t)
		return len(lowered) == 0 || len(lowered) == 1 && lowered[0] == unix.Getpid()
	}, testWait, testTick)
}
