package password

import (
	"context"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/backplane/backplane/services/auth/password/internal/argon2"
)

// workerLinger is how long an idle worker waits for another hash before it ends, so
// that a steady trickle of logins does not start a worker (and add a P) for each.
const workerLinger = time.Second

// pool runs computations on at most size worker goroutines. Workers start when there is
// work and end once they have been idle for linger.
//
// With a yield policy (the hasher's default), each live worker adds a P to GOMAXPROCS
// (see leaseProc) and each computation is handed a yield function to call between
// segments of its work, with which it steps aside while the rest of the process has work
// (see yieldPolicy). The extra P is still needed: were GOMAXPROCS left at the number of
// cores, a flood of hashes would hold every P, and with every P busy no thread waits on
// the network, so a request would not even be seen, let alone seen as runnable, until
// the runtime's monitor polls for it (up to 10 ms). With the extra P a thread waits on
// the network as usual, picks the request up at once and the kernel, at equal priority,
// gives it a share of a core; within one yield interval the hashes see it running and
// step aside. Without a policy, workers are plain bounded goroutines holding Go's Ps
// like any other work, and computations are handed a nil yield.
type pool struct {
	size   int
	yields *yieldPolicy
	linger time.Duration
	// keepKiB is how much argon2 memory each worker keeps from one computation to the
	// next (see argon2.Memory); zero for none.
	keepKiB uint32

	mu      sync.Mutex
	queue   []*job
	workers int
	idle    int
	// wake tells idle workers that the queue has work; buffered to size so a signal is
	// never lost while any worker could be waiting for it.
	wake chan struct{}
}

// job is one computation, waiting in the queue until a worker takes it.
type job struct {
	fn func(yield func(), mem *argon2.Memory)
	// state moves from queued to taken (by a worker) or to abandoned (by a caller whose
	// context ended first), exactly once.
	state  atomic.Int32
	done   chan struct{}
	panicV any
}

const (
	jobQueued int32 = iota
	jobTaken
	jobAbandoned
)

// newPool returns a pool of at most size workers whose computations step aside as
// yields says; nil for plain bounded goroutines that never yield.
func newPool(size int, yields *yieldPolicy) *pool {
	return &pool{size: size, yields: yields, linger: workerLinger, wake: make(chan struct{}, size)}
}

// do runs fn on a worker and returns once it has run. fn is to call yield between
// segments of its work (yield is nil when the pool has no yield policy), and may compute
// in mem, the worker's own memory, which it must not keep. If ctx ends while fn is
// still queued, do returns ctx's error at once and fn never runs; once a worker has
// taken fn, do waits for it (one hash is tens of milliseconds, plus at most the
// hold-back its policy allows, see yieldPolicy).
func (p *pool) do(ctx context.Context, fn func(yield func(), mem *argon2.Memory)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	j := &job{fn: fn, done: make(chan struct{})}
	p.mu.Lock()
	p.queue = append(p.queue, j)
	// A new worker only for work the idle ones cannot take.
	start := len(p.queue) > p.idle && p.workers < p.size
	if start {
		p.workers++
	}
	if p.idle > 0 {
		select {
		case p.wake <- struct{}{}:
		default: // as many signals are pending as workers could wait for
		}
	}
	p.mu.Unlock()
	if start {
		go p.work()
	}
	select {
	case <-j.done:
	case <-ctx.Done():
		if j.state.CompareAndSwap(jobQueued, jobAbandoned) {
			return ctx.Err()
		}
		<-j.done
	}
	if j.panicV != nil {
		// Re-raised on the caller's goroutine, where the server's recovery sees it, rather
		// than taking the process down from a worker.
		panic(j.panicV)
	}
	return nil
}

// work is a worker's whole life.
func (p *pool) work() {
	if p.yields != nil {
		leaseProc(1)
		defer leaseProc(-1)
	}
	// The worker's memory goes with it when it ends, so an idle hasher holds none.
	mem := argon2.NewMemory(p.keepKiB)
	for {
		j := p.next()
		if j == nil {
			return
		}
		p.run(j, mem)
	}
}

// next returns the next job still wanted, waiting up to linger for one; nil when the
// worker should end.
func (p *pool) next() *job {
	var linger *time.Timer
	timedOut := false
	for {
		p.mu.Lock()
		for len(p.queue) > 0 {
			j := p.queue[0]
			p.queue[0] = nil
			p.queue = p.queue[1:]
			if j.state.CompareAndSwap(jobQueued, jobTaken) {
				p.mu.Unlock()
				return j
			}
		}
		// The queue is checked under the lock before ending, so a job queued while the
		// worker was timing out is taken, not stranded.
		if timedOut {
			p.workers--
			p.mu.Unlock()
			return nil
		}
		p.idle++
		p.mu.Unlock()
		if linger == nil {
			linger = time.NewTimer(p.linger)
			defer linger.Stop()
		}
		select {
		case <-p.wake:
		case <-linger.C:
			timedOut = true
		}
		p.mu.Lock()
		p.idle--
		p.mu.Unlock()
	}
}

func (p *pool) run(j *job, mem *argon2.Memory) {
	defer close(j.done)
	defer func() { j.panicV = recover() }()
	if p.yields == nil {
		j.fn(nil, mem)
		return
	}
	h := p.yields.start()
	defer h.end()
	j.fn(h.yield, mem)
}

// procs tracks the Ps that live hashing workers add to GOMAXPROCS. It is process-wide
// because GOMAXPROCS is: however many hashers a process builds (tests build dozens),
// the Ps come back when the last worker ends.
var procs struct {
	sync.Mutex
	base, extra int
}

// leaseProc adds n Ps to GOMAXPROCS (or gives them back, n < 0). Changing GOMAXPROCS
// stops the world briefly, which is why workers linger instead of starting per hash.
func leaseProc(n int) {
	procs.Lock()
	defer procs.Unlock()
	if procs.extra == 0 {
		procs.base = runtime.GOMAXPROCS(0)
	}
	procs.extra += n
	if procs.extra > 0 {
		runtime.GOMAXPROCS(procs.base + procs.extra)
		return
	}
	if os.Getenv("GOMAXPROCS") == "" {
		// Back to the runtime's own choice, which follows the container's CPU limit.
		runtime.SetDefaultGOMAXPROCS()
		return
	}
	runtime.GOMAXPROCS(procs.base)
}

// cores is the number of Ps the process has without hashing workers: what "every core"
// means for the default concurrency.
func cores() int {
	procs.Lock()
	defer procs.Unlock()
	if procs.extra > 0 {
		return procs.base
	}
	return runtime.GOMAXPROCS(0)
}
