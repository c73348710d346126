package password

import (
	"context"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// hashNice is the nice value of a hashing thread. Against a thread at the default 0 it
// gets about two fifths of a contended core (CFS weights 655 against 1024), so the rest
// of the API is favoured while hashing still progresses. It is only a little lower than
// normal on purpose: at 19 (weight 15, 1.5 %), 10 (110) and 5 (335), a CPU kept busy by
// anything else, the API's own load or neighbours in the same scheduling group, starved
// each hash for seconds and sign-ups ran past the edge's 3 s call cap in the faults
// suite (at 19 under CI's parallel tests; at 10 and 5 beside eight busy loops).
const hashNice = 2

// workerLinger is how long an idle worker waits for another hash before its thread
// exits, so that a steady trickle of logins does not start a thread for each.
const workerLinger = time.Second

// pool runs computations on at most size worker goroutines, each locked to an OS thread
// of its own whose scheduling priority is lowered. Workers start when there is work and
// end, taking their threads with them, once they have been idle for linger.
//
// A locked worker still holds one of Go's Ps while it computes. Were GOMAXPROCS left at
// the number of cores, a flood of hashes would hold every P and the rest of the process
// would wait for the Go scheduler to preempt one (10 ms at a time), whatever the
// kernel's priorities; so each live worker adds a P (see leaseProc), and the kernel,
// not the Go scheduler, decides who runs.
type pool struct {
	size int
	// lower lowers each worker thread's priority and adds a P per worker; off, workers
	// are plain bounded goroutines at normal priority, as hashing was before.
	lower  bool
	linger time.Duration
	log    *slog.Logger
	// warned makes the first failure to lower a thread's priority the only one logged.
	warned sync.Once

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
	fn func()
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

func newPool(size int, lower bool, log *slog.Logger) *pool {
	return &pool{size: size, lower: lower, linger: workerLinger, log: log, wake: make(chan struct{}, size)}
}

// do runs fn on a worker and returns once it has run. If ctx ends while fn is still
// queued, do returns ctx's error at once and fn never runs; once a worker has taken fn,
// do waits for it (one hash is tens of milliseconds).
func (p *pool) do(ctx context.Context, fn func()) error {
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

// work is a worker's whole life. With lowered priority its goroutine is locked to its
// thread and never unlocks: when it returns, the runtime ends the thread with it, so the
// lowered priority can never pass to another goroutine. (Should the worker have run on
// the process's main thread, which cannot end, the runtime parks that thread for good
// instead: it too never runs another goroutine.)
func (p *pool) work() {
	if p.lower {
		runtime.LockOSThread()
		if err := lowerThreadPriority(); err != nil {
			p.warned.Do(func() {
				p.log.Warn("password hashing runs at normal priority: a login flood competes with the rest of the API for the CPU",
					"error", err)
			})
		}
		leaseProc(1)
		defer leaseProc(-1)
	}
	for {
		j := p.next()
		if j == nil {
			return
		}
		p.run(j)
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

func (p *pool) run(j *job) {
	defer close(j.done)
	defer func() { j.panicV = recover() }()
	j.fn()
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
