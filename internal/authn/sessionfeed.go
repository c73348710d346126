package authn

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// endedChannel is the pub/sub channel, beside the mirror's keys, on which End announces
// every ended session (channels are a namespace apart from keys; the name follows the
// readiness marker's).
func (l *LiveSessions) endedChannel() string { return l.prefix + "_ended" }

// SessionFeedConfig configures a SessionFeed.
type SessionFeedConfig struct {
	// Checker answers for a watched session whose key is missing from the mirror (the
	// verifier's SessionChecker, which asks the records); the mirror itself when nil.
	Checker SessionChecker
	// Interval is how often the sessions that have watchers are looked up again, for an
	// announcement pub/sub lost (500 ms by default: with it, an ended session is felt
	// within a second even when Redis dropped the message).
	Interval time.Duration
	// Logger records failed look-ups (never a session id's secret: ids are not secrets).
	Logger *slog.Logger
}

// SessionFeed tells this process's long-lived calls, and whoever registered a hook, that
// a session ended. It holds one Redis subscription per process to the announcements End
// publishes, fanned out to every watcher, and looks the watched sessions up again every
// Interval in one batched command, since pub/sub is fire-and-forget: a message lost
// while a connection was down is caught by the next look-up.
type SessionFeed struct {
	sessions *LiveSessions
	check    SessionChecker
	interval time.Duration
	log      *slog.Logger

	mu       sync.Mutex
	watchers map[string]map[*sessionWatch]struct{}
	hooks    []func(sessionID string)

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type sessionWatch struct {
	ended chan struct{}
}

// NewSessionFeed returns a feed over the mirror sessions; nothing runs until Start.
func NewSessionFeed(sessions *LiveSessions, cfg SessionFeedConfig) *SessionFeed {
	if cfg.Checker == nil {
		cfg.Checker = sessions
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 500 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &SessionFeed{
		sessions: sessions, check: cfg.Checker, interval: cfg.Interval, log: cfg.Logger,
		watchers: map[string]map[*sessionWatch]struct{}{},
	}
}

// Start subscribes to the announcements and starts the periodic look-up; it returns once
// Redis confirmed the subscription, or with the error that kept it from doing so. Close
// stops both.
func (f *SessionFeed) Start(ctx context.Context) error {
	ps := f.sessions.rdb.Subscribe(ctx, f.sessions.endedChannel())
	if _, err := ps.Receive(ctx); err != nil {
		_ = ps.Close()
		return err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	f.cancel = cancel
	f.wg.Add(2)
	go func() {
		defer f.wg.Done()
		// go-redis reconnects and subscribes again by itself; what is lost meanwhile the
		// look-up below catches.
		messages := ps.Channel()
		for {
			select {
			case <-runCtx.Done():
				_ = ps.Close()
				return
			case m, ok := <-messages:
				if !ok {
					return
				}
				f.ended(m.Payload)
			}
		}
	}()
	go func() {
		defer f.wg.Done()
		tick := time.NewTicker(f.interval)
		defer tick.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-tick.C:
				f.recheck(runCtx)
			}
		}
	}()
	return nil
}

// Close stops the feed. Watchers are left as they are: the calls they guard end with
// the process.
func (f *SessionFeed) Close(context.Context) error {
	if f.cancel != nil {
		f.cancel()
	}
	f.wg.Wait()
	return nil
}

// Watch returns a channel closed when the session ends, and stop, which the caller must
// call when it no longer cares (it may be called more than once).
func (f *SessionFeed) Watch(sessionID string) (ended <-chan struct{}, stop func()) {
	w := &sessionWatch{ended: make(chan struct{})}
	f.mu.Lock()
	set := f.watchers[sessionID]
	if set == nil {
		set = map[*sessionWatch]struct{}{}
		f.watchers[sessionID] = set
	}
	set[w] = struct{}{}
	f.mu.Unlock()
	return w.ended, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if set := f.watchers[sessionID]; set != nil {
			delete(set, w)
			if len(set) == 0 {
				delete(f.watchers, sessionID)
			}
		}
	}
}

// OnEnded registers hook to be told the id of every session announced as ended (and of
// each watched session the periodic look-up finds ended), such as to drop a local cache
// entry. Hooks run on the feed's goroutine: they must return quickly.
func (f *SessionFeed) OnEnded(hook func(sessionID string)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hooks = append(f.hooks, hook)
}

// ended closes the watchers of a session and tells the hooks.
func (f *SessionFeed) ended(sessionID string) {
	f.mu.Lock()
	set := f.watchers[sessionID]
	delete(f.watchers, sessionID)
	hooks := slices.Clone(f.hooks)
	f.mu.Unlock()
	for w := range set {
		close(w.ended)
	}
	for _, h := range hooks {
		h(sessionID)
	}
}

// recheckBatch bounds the keys of one MGET.
const recheckBatch = 500

// recheck looks every watched session up in the mirror, a batch per command. A key that
// is missing is not taken for an end: the checker asks the records (and repairs the
// key) or says the mirror is being rebuilt, in which case the session is left alone.
func (f *SessionFeed) recheck(ctx context.Context) {
	f.mu.Lock()
	ids := make([]string, 0, len(f.watchers))
	for id := range f.watchers {
		ids = append(ids, id)
	}
	f.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, f.interval)
	defer cancel()
	for batch := range slices.Chunk(ids, recheckBatch) {
		keys := make([]string, len(batch))
		for i, id := range batch {
			keys[i] = f.sessions.key(id)
		}
		states, err := f.sessions.rdb.MGet(ctx, keys...).Result()
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				f.log.WarnContext(ctx, "look up watched sessions", "error", err.Error())
			}
			return
		}
		for i, id := range batch {
			switch states[i] {
			case stateLive:
			case nil:
				live, err := f.check.Live(ctx, id)
				if err == nil && !live {
					f.ended(id)
				}
			default:
				f.ended(id)
			}
		}
	}
}

// publishEnded announces an ended session on the feed's channel, in the pipeline that
// writes its tombstone.
func (l *LiveSessions) publishEnded(ctx context.Context, pipe redis.Pipeliner, sessionID string) {
	pipe.Publish(ctx, l.endedChannel(), sessionID)
}
