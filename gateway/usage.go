package gateway

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	usagev1 "github.com/backplane/backplane/gen/backplane/usage/v1"
	"github.com/backplane/backplane/internal/identity"
)

// The edge meters API calls itself. Every call a user makes (with an access token or an
// API key) that the edge admits is counted in memory, per user, and the counts go to the
// usage service in batches through IngestUsage: every FlushInterval, or as soon as
// FlushCalls calls have been counted, never a call per request. The usage service
// answers where each user stands on the api_calls meter; when the user's plan sets an
// api_calls quota and the total has reached it, the edge answers the user's further
// calls RESOURCE_EXHAUSTED (HTTP 429) with a google.rpc.QuotaFailure, on both doors,
// until the period resets.
//
// Bounds, with R gateway replicas and one flush interval I (1 s, or 500 calls on a
// replica, whichever comes first):
//
//   - Overshoot. A replica refuses once the total it last heard plus the calls it has
//     admitted since reach the limit, so it never passes the limit by itself. What it
//     cannot see are the calls the other replicas admitted since their last flush: a user
//     can pass the limit by at most the calls the other R−1 replicas admit in one
//     interval (none with one replica), plus, while refused, one call per replica every
//     standingTTL, admitted to learn of a plan change (an upgrade is felt within it).
//   - Loss. Counts live in memory until their flush is answered. A replica that crashes
//     loses the calls it admitted since its last answered flush: at most one interval of
//     its calls (those of a batch in flight count once if the usage service had stored
//     it). A replica stopped in order flushes first. While the usage service is
//     unreachable, a failed batch is retried with its own idempotency keys, so it counts
//     once however often it is sent, and new counts accumulate beside it, one number
//     per user, until it goes through: the longer the outage, the more a crash would
//     lose.
//
// Calls to the subscription and usage services, and Logout, are counted but never
// refused: a user past the quota can still see their usage, change their plan and sign
// out. Signing in carries no user, so it is neither counted nor refused.

// APICallsConfig is how the edge counts API calls on the api_calls meter.
type APICallsConfig struct {
	// Usage reaches the usage service with this process's service credential (its
	// IngestUsage is for services only).
	Usage usagev1.UsageServiceClient
	// FlushInterval is how often counts are sent; zero means 1s.
	FlushInterval time.Duration
	// FlushCalls is how many counted calls send the counts before the interval is up;
	// zero means 500.
	FlushCalls int
}

// The meter the edge counts on, and the bounds of its batches.
const (
	apiCallsMeter        = "api_calls"
	defaultFlushInterval = time.Second
	defaultFlushCalls    = 500
	// maxIngest is how many users' counts one IngestUsage carries (its max_items).
	maxIngest = 1000
	// flushTimeout bounds one IngestUsage.
	flushTimeout = 5 * time.Second
	// standingTTL is how long a refusal stands on what the usage service last said: after
	// it, one call is admitted so that its flush brings the user's standing afresh.
	standingTTL = 30 * time.Second
)

// neverRefused are the services a user past the api_calls quota may still call.
var neverRefused = []string{
	"/backplane.auth.v1.AuthService/Logout",
	"/backplane.subscription.v1.SubscriptionService/",
	"/backplane.usage.v1.UsageService/",
}

// apiCallMeter counts the calls of each user and sends the counts in batches.
type apiCallMeter struct {
	usage    usagev1.UsageServiceClient
	interval time.Duration
	trigger  int
	log      *slog.Logger
	now      func() time.Time
	// instance names this replica in the idempotency keys of its batches.
	instance string

	mu        sync.Mutex
	pending   map[string]int64    // calls counted since the last batch was cut
	counted   int                 // the sum of pending
	standings expiring[*standing] // users with an api_calls quota, as last heard, until their period resets
	unsent    []*usagev1.IngestUsageRequest
	seq       int64

	kick    chan struct{}
	stop    context.CancelFunc
	stopped chan struct{}
}

// standing is where a user with an api_calls quota stood when the usage service last
// answered, and what this replica has admitted since.
type standing struct {
	total, limit int64
	reset        time.Time
	heard        time.Time
	since        int64 // calls admitted by this replica since the answer
	probing      bool  // a call was admitted past the limit to learn the standing afresh
}

func newAPICallMeter(cfg APICallsConfig, log *slog.Logger) (*apiCallMeter, error) {
	if cfg.Usage == nil {
		return nil, errors.New("gateway: APICalls needs the usage service's client")
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = defaultFlushInterval
	}
	if cfg.FlushCalls <= 0 {
		cfg.FlushCalls = defaultFlushCalls
	}
	return &apiCallMeter{
		usage:     cfg.Usage,
		interval:  cfg.FlushInterval,
		trigger:   cfg.FlushCalls,
		log:       log,
		now:       time.Now,
		instance:  strings.ToLower(rand.Text()[:16]),
		pending:   map[string]int64{},
		standings: newExpiring[*standing](),
		kick:      make(chan struct{}, 1),
	}, nil
}

// start sends the counts in the background until close, whatever becomes of ctx (New's).
// A loop of its own rather than a job: the counts are this process's memory, and a
// second is too short for a queue.
func (m *apiCallMeter) start(ctx context.Context) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.stop = cancel
	m.stopped = make(chan struct{})
	go func() {
		defer close(m.stopped)
		tick := time.NewTicker(m.interval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			case <-m.kick:
			}
			_ = m.flush(ctx)
		}
	}()
}

// close stops the background sending and sends what is left.
func (m *apiCallMeter) close(ctx context.Context) error {
	if m.stop != nil {
		m.stop()
		<-m.stopped
	}
	return m.flush(ctx)
}

// admit counts a call of an authenticated user, or refuses it when the user's api_calls
// quota is spent. Anonymous calls and services' calls are not counted.
func (m *apiCallMeter) admit(ctx context.Context, fullMethod string) error {
	p, ok := identity.FromContext(ctx)
	if !ok {
		return nil
	}
	user := p.UserID
	exempt := exemptFromQuota(fullMethod)
	m.mu.Lock()
	now := m.now()
	// A standing lapses when its period resets: nothing is known of the new one yet.
	if st, ok := m.standings.get(user, now); ok {
		switch {
		case exempt || st.total+st.since < st.limit:
			st.since++
		case st.probing || now.Sub(st.heard) < standingTTL:
			m.mu.Unlock()
			return quotaExhausted(user, st)
		default:
			st.probing = true
			st.since++
		}
	}
	m.pending[user]++
	m.counted++
	full := m.counted >= m.trigger
	m.mu.Unlock()
	if full {
		select {
		case m.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// exemptFromQuota reports whether a call is never refused past the quota: those to the
// services a user needs to get out of that state.
func exemptFromQuota(fullMethod string) bool {
	for _, prefix := range neverRefused {
		if strings.HasPrefix(fullMethod, prefix) {
			return true
		}
	}
	return false
}

// quotaExhausted is the answer to a call past the quota.
func quotaExhausted(user string, st *standing) error {
	s, _ := status.New(codes.ResourceExhausted,
		fmt.Sprintf("your plan's %d API calls this period are used up; the quota resets at %s", st.limit, st.reset.UTC().Format(time.RFC3339))).
		WithDetails(&errdetails.QuotaFailure{Violations: []*errdetails.QuotaFailure_Violation{{
			Subject:     "user:" + user,
			Description: fmt.Sprintf("%s: %d of %d used; resets at %s", apiCallsMeter, st.total+st.since, st.limit, st.reset.UTC().Format(time.RFC3339)),
		}}})
	return s.Err()
}

// flush sends the batch that failed before, if any, then the counts since the last
// batch. A batch that fails is kept, with its idempotency keys, and sent again first
// next time; until it goes through, new counts wait.
//
// The counts are cut once a flush: calls counted while a batch is on its way wait for
// the next tick or kick. Cutting again until nothing was pending had a busy edge send a
// batch the moment the last was answered, dozens a second of a few calls each, and the
// usage service spent a third as much CPU per API call as the auth service did.
func (m *apiCallMeter) flush(ctx context.Context) error {
	cut := false
	for {
		m.mu.Lock()
		if len(m.unsent) == 0 && !cut {
			m.cut()
			cut = true
		}
		if len(m.unsent) == 0 {
			m.mu.Unlock()
			return nil
		}
		req := m.unsent[0]
		m.mu.Unlock()

		cctx, cancel := context.WithTimeout(ctx, flushTimeout)
		resp, err := m.usage.IngestUsage(cctx, req)
		cancel()
		if err != nil && ctx.Err() != nil {
			// Stopping (close cancelled the background loop mid-send): close sends the
			// batch again, under the same idempotency keys, so this is no failure.
			return err
		}
		if err != nil {
			m.log.WarnContext(ctx, "api calls not yet reported to the usage service; retrying", "users", len(req.GetEvents()), "error", err.Error())
			return err
		}
		m.mu.Lock()
		m.unsent = m.unsent[1:]
		m.learn(resp)
		m.mu.Unlock()
	}
}

// cut turns the counts since the last batch into batches of at most maxIngest users,
// each under idempotency keys of its own. m.mu is held.
func (m *apiCallMeter) cut() {
	if len(m.pending) == 0 {
		return
	}
	var req *usagev1.IngestUsageRequest
	for user, n := range m.pending {
		if req == nil || len(req.GetEvents()) == maxIngest {
			m.seq++
			req = &usagev1.IngestUsageRequest{}
			m.unsent = append(m.unsent, req)
		}
		req.Events = append(req.Events, &usagev1.UserUsage{UserId: user, Usage: &usagev1.RecordUsageRequest{
			Meter:          apiCallsMeter,
			Quantity:       n,
			IdempotencyKey: fmt.Sprintf("edge-%s-%d", m.instance, m.seq),
		}})
	}
	m.pending = map[string]int64{}
	m.counted = 0
}

// learn keeps the standing of each user with an api_calls quota that a batch counted on.
// The calls admitted since the batch was cut are still waiting; they count against the
// new standing. m.mu is held.
func (m *apiCallMeter) learn(resp *usagev1.IngestUsageResponse) {
	now := m.now()
	for _, s := range resp.GetStandings() {
		if s.GetMeter() != apiCallsMeter {
			continue
		}
		if s.Limit == nil {
			m.standings.forget(s.GetUserId())
			continue
		}
		reset := s.GetResetTime().AsTime()
		m.standings.put(s.GetUserId(), &standing{
			total: s.GetTotal(), limit: s.GetLimit(), reset: reset, heard: now,
			since: m.pending[s.GetUserId()],
		}, reset)
	}
	m.standings.sweep(now)
}

func (m *apiCallMeter) unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := m.admit(ctx, info.FullMethod); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// stream counts a stream once, when it opens.
func (m *apiCallMeter) stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := m.admit(ss.Context(), info.FullMethod); err != nil {
			return err
		}
		return handler(srv, ss)
	}
}

// Stop sends the API calls counted and not yet reported to the usage service, and stops
// counting's background work. Call it when the front doors have stopped serving.
func (g *Gateway) Stop(ctx context.Context) error {
	if g.calls == nil {
		return nil
	}
	return g.calls.close(ctx)
}
