package gateway_test

import (
	"context"
	"crypto/rand"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/backplane/backplane/gateway"
	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	usagev1 "github.com/backplane/backplane/gen/backplane/usage/v1"
	"github.com/backplane/backplane/internal/grpctest"
	"github.com/backplane/backplane/internal/scenario"
)

// usageService stands in for the usage service behind the edge: IngestUsage counts each
// user's api_calls once per idempotency key and answers each user's standing against a
// limit the test sets; GetUsageSummary answers empty.
type usageService struct {
	usagev1.UnimplementedUsageServiceServer
	mu       sync.Mutex
	totals   map[string]int64
	keys     map[string]bool // user + key
	limits   map[string]int64
	reset    time.Time
	requests []*usagev1.IngestUsageRequest
	fail     int // IngestUsage calls to refuse before accepting
	// hold, when set, keeps IngestUsage from answering until it is closed; arrived
	// tells the test that a call is held.
	hold, arrived chan struct{}
}

func (u *usageService) IngestUsage(_ context.Context, req *usagev1.IngestUsageRequest) (*usagev1.IngestUsageResponse, error) {
	if u.hold != nil {
		u.arrived <- struct{}{}
		<-u.hold
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.requests = append(u.requests, req)
	if u.fail > 0 {
		u.fail--
		// Not UNAVAILABLE, which the client retries by itself.
		return nil, status.Error(codes.Internal, "the usage service failed")
	}
	resp := &usagev1.IngestUsageResponse{}
	for _, e := range req.GetEvents() {
		user, usage := e.GetUserId(), e.GetUsage()
		outcome := usagev1.RecordOutcome_RECORD_OUTCOME_DUPLICATE
		if !u.keys[user+"|"+usage.GetIdempotencyKey()] {
			u.keys[user+"|"+usage.GetIdempotencyKey()] = true
			u.totals[user] += usage.GetQuantity()
			outcome = usagev1.RecordOutcome_RECORD_OUTCOME_RECORDED
		}
		resp.Results = append(resp.Results, &usagev1.RecordUsageResult{Outcome: outcome})
		st := &usagev1.QuotaStanding{UserId: user, Meter: usage.GetMeter(), Total: u.totals[user], ResetTime: timestamppb.New(u.reset)}
		if l, ok := u.limits[user]; ok {
			st.Limit, st.Remaining = &l, new(max(0, l-u.totals[user]))
		}
		resp.Standings = append(resp.Standings, st)
	}
	return resp, nil
}

func (u *usageService) GetUsageSummary(context.Context, *usagev1.GetUsageSummaryRequest) (*usagev1.GetUsageSummaryResponse, error) {
	return &usagev1.GetUsageSummaryResponse{}, nil
}

func (u *usageService) ListMeters(context.Context, *usagev1.ListMetersRequest) (*usagev1.ListMetersResponse, error) {
	return &usagev1.ListMetersResponse{}, nil
}

func (u *usageService) total(user string) int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.totals[user]
}

func (u *usageService) setLimit(user string, limit int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.limits[user] = limit
}

// counting is an edge that counts API calls into a usageService.
type counting struct {
	*secured
	usage *usageService
}

// setupCounting starts a secured edge whose calls are counted into a fresh usageService,
// flushed only when the test says (or after flushCalls calls).
func setupCounting(t *testing.T, flushCalls int) *counting {
	t.Helper()
	u := &usageService{totals: map[string]int64{}, keys: map[string]bool{}, limits: map[string]int64{}, reset: time.Now().Add(time.Hour).Truncate(time.Second)}
	srv := grpc.NewServer()
	usagev1.RegisterUsageServiceServer(srv, u)
	var lc net.ListenConfig
	lis, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn := grpctest.Dial(t, lis.Addr().String())
	s := setupSecured(t, nil, func(c *gateway.Config) {
		c.Backends["usage"] = conn
		c.APICalls = &gateway.APICallsConfig{Usage: usagev1.NewUsageServiceClient(conn), FlushInterval: time.Hour, FlushCalls: flushCalls}
	})
	t.Cleanup(func() { _ = s.gateway.Stop(context.Background()) })
	return &counting{secured: s, usage: u}
}

// signIn is an access token of user, on a live session.
func (c *counting) signIn(t *testing.T, user string) string {
	t.Helper()
	sid := rand.Text()
	require.NoError(t, c.sessions.MarkLive(t.Context(), sid, time.Now().Add(time.Hour)))
	tok, _, err := c.issuer.Issue(user, sid, []string{"user"})
	require.NoError(t, err)
	return tok
}

// overREST calls GetCurrentUser through the REST door and returns the status and body.
func (c *counting) overREST(t *testing.T, token string) (int, map[string]any) {
	t.Helper()
	resp, body := c.do(t, http.MethodGet, "/v1/users/me", "", http.Header{"Authorization": {"Bearer " + token}})
	return resp.StatusCode, body
}

// overGRPC calls GetCurrentUser through the gRPC door.
func (c *counting) overGRPC(t *testing.T, token string) error {
	t.Helper()
	_, err := authv1.NewAuthServiceClient(c.grpc).GetCurrentUser(grpctest.Bearer(t.Context(), token), &authv1.GetCurrentUserRequest{})
	return err
}

func TestAPICallsAreCountedInBatches(t *testing.T) {
	t.Parallel()
	c := setupCounting(t, 1000)
	alice, bob := uuid.NewString(), uuid.NewString()
	ta, tb := c.signIn(t, alice), c.signIn(t, bob)

	for range 3 {
		status, _ := c.overREST(t, ta)
		require.Equal(t, http.StatusOK, status)
		require.NoError(t, c.overGRPC(t, ta))
	}
	require.NoError(t, c.overGRPC(t, tb))
	status, _ := c.do(t, http.MethodGet, "/v1/meters", "", nil)
	require.Equal(t, http.StatusOK, status.StatusCode, "anonymous: not counted")
	require.Zero(t, c.usage.total(alice), "nothing is sent per call")

	require.NoError(t, gateway.FlushAPICalls(t.Context(), c.gateway))
	require.Equal(t, int64(6), c.usage.total(alice))
	require.Equal(t, int64(1), c.usage.total(bob))
	c.usage.mu.Lock()
	require.Len(t, c.usage.requests, 1, "one batch for every user")
	for _, e := range c.usage.requests[0].GetEvents() {
		require.Equal(t, "api_calls", e.GetUsage().GetMeter())
	}
	c.usage.mu.Unlock()

	require.NoError(t, gateway.FlushAPICalls(t.Context(), c.gateway))
	c.usage.mu.Lock()
	require.Len(t, c.usage.requests, 1, "nothing new, nothing sent")
	c.usage.mu.Unlock()

	t.Run("counts left at stop are sent", func(t *testing.T) {
		require.NoError(t, c.overGRPC(t, tb))
		require.NoError(t, c.gateway.Stop(t.Context()))
		require.Equal(t, int64(2), c.usage.total(bob))
	})
}

func TestAPICallsAreSentOnceEnoughAreCounted(t *testing.T) {
	t.Parallel()
	c := setupCounting(t, 5)
	user := uuid.NewString()
	tok := c.signIn(t, user)
	for range 5 {
		require.NoError(t, c.overGRPC(t, tok))
	}
	require.Eventually(t, func() bool { return c.usage.total(user) == 5 }, 10*time.Second, 10*time.Millisecond,
		"the fifth call sends the batch, long before the interval")
}

// A busy edge sends a batch per tick or per FlushCalls calls, not one after another: the
// calls counted while a batch is on its way wait for the next flush.
func TestCallsCountedDuringASendWaitForTheNextFlush(t *testing.T) {
	t.Parallel()
	c := setupCounting(t, 1000)
	user := uuid.NewString()
	tok := c.signIn(t, user)
	require.NoError(t, c.overGRPC(t, tok))

	c.usage.hold, c.usage.arrived = make(chan struct{}), make(chan struct{}, 1)
	flushed := make(chan error, 1)
	go func() { flushed <- gateway.FlushAPICalls(t.Context(), c.gateway) }()
	<-c.usage.arrived
	require.NoError(t, c.overGRPC(t, tok))
	require.NoError(t, c.overGRPC(t, tok))
	close(c.usage.hold)
	require.NoError(t, <-flushed)
	require.Equal(t, int64(1), c.usage.total(user), "the two calls made meanwhile are not sent by the same flush")
	c.usage.mu.Lock()
	require.Len(t, c.usage.requests, 1)
	c.usage.mu.Unlock()

	c.usage.arrived = make(chan struct{}, 1)
	require.NoError(t, gateway.FlushAPICalls(t.Context(), c.gateway))
	require.Equal(t, int64(3), c.usage.total(user), "the next flush sends them")
}

func TestAFailedBatchIsSentAgainUnderItsKeys(t *testing.T) {
	t.Parallel()
	c := setupCounting(t, 1000)
	user := uuid.NewString()
	tok := c.signIn(t, user)
	c.usage.fail = 1
	require.NoError(t, c.overGRPC(t, tok))
	require.Error(t, gateway.FlushAPICalls(t.Context(), c.gateway))
	require.NoError(t, c.overGRPC(t, tok))
	require.NoError(t, c.overGRPC(t, tok))
	require.NoError(t, gateway.FlushAPICalls(t.Context(), c.gateway))
	require.Equal(t, int64(3), c.usage.total(user), "nothing lost, nothing twice")

	c.usage.mu.Lock()
	defer c.usage.mu.Unlock()
	require.Len(t, c.usage.requests, 3, "the failed batch, again, then the new counts")
	first, again, next := c.usage.requests[0].GetEvents()[0], c.usage.requests[1].GetEvents()[0], c.usage.requests[2].GetEvents()[0]
	require.Equal(t, first.GetUsage().GetIdempotencyKey(), again.GetUsage().GetIdempotencyKey())
	require.Equal(t, int64(1), again.GetUsage().GetQuantity())
	require.NotEqual(t, first.GetUsage().GetIdempotencyKey(), next.GetUsage().GetIdempotencyKey())
	require.Equal(t, int64(2), next.GetUsage().GetQuantity())
}

// A user whose plan sets an api_calls quota is refused once it is spent, on both doors,
// with a QuotaFailure; what gets them out of it stays open.
func TestCallsPastTheAPICallsQuotaAreRefused(t *testing.T) {
	t.Parallel()
	c := setupCounting(t, 1000)
	var now atomic.Int64 // the edge's clock, in Unix nanoseconds
	now.Store(time.Now().UnixNano())
	gateway.SetAPICallsClock(c.gateway, func() time.Time { return time.Unix(0, now.Load()) })
	user, other := uuid.NewString(), uuid.NewString()
	tok, otherTok := c.signIn(t, user), c.signIn(t, other)
	c.usage.setLimit(user, 10)

	scenario.Step(t, "admitted while the quota lasts", func(t *testing.T) {
		for range 4 {
			require.NoError(t, c.overGRPC(t, tok))
		}
		require.NoError(t, gateway.FlushAPICalls(t.Context(), c.gateway))
		require.Equal(t, int64(4), c.usage.total(user))
		for range 3 {
			require.NoError(t, c.overGRPC(t, tok))
			status, _ := c.overREST(t, tok)
			require.Equal(t, http.StatusOK, status)
		}
	})
	scenario.Step(t, "the eleventh call is refused on both doors", func(t *testing.T) {
		err := c.overGRPC(t, tok)
		st := status.Convert(err)
		require.Equal(t, codes.ResourceExhausted, st.Code())
		require.Len(t, st.Details(), 1)
		qf, ok := st.Details()[0].(*errdetails.QuotaFailure)
		require.True(t, ok, "%T", st.Details()[0])
		require.Equal(t, "user:"+user, qf.GetViolations()[0].GetSubject())
		require.Contains(t, qf.GetViolations()[0].GetDescription(), "api_calls")

		code, body := c.overREST(t, tok)
		require.Equal(t, http.StatusTooManyRequests, code)
		details := body["details"].([]any)
		require.Equal(t, "type.googleapis.com/google.rpc.QuotaFailure", details[0].(map[string]any)["@type"])
	})
	scenario.Step(t, "others, and the way out, are not refused", func(t *testing.T) {
		require.NoError(t, c.overGRPC(t, otherTok))
		resp, _ := c.do(t, http.MethodGet, "/v1/usage", "", http.Header{"Authorization": {"Bearer " + tok}})
		require.Equal(t, http.StatusOK, resp.StatusCode, "the usage summary")
		require.NoError(t, gateway.FlushAPICalls(t.Context(), c.gateway))
		require.Equal(t, int64(11), c.usage.total(user), "ten calls and the summary; refusals are not counted")
	})
	scenario.Step(t, "an upgrade is learnt from one call admitted once the standing is old", func(t *testing.T) {
		c.usage.setLimit(user, 1000)
		require.Equal(t, codes.ResourceExhausted, status.Code(c.overGRPC(t, tok)), "the standing is fresh")
		now.Add(int64(31 * time.Second))
		require.NoError(t, c.overGRPC(t, tok), "one call learns afresh")
		require.Equal(t, codes.ResourceExhausted, status.Code(c.overGRPC(t, tok)), "until its flush is answered")
		require.NoError(t, gateway.FlushAPICalls(t.Context(), c.gateway))
		require.NoError(t, c.overGRPC(t, tok), "the new limit")
	})
	scenario.Step(t, "a new period starts afresh", func(t *testing.T) {
		c.usage.setLimit(user, 14)
		require.NoError(t, gateway.FlushAPICalls(t.Context(), c.gateway))
		require.Equal(t, int64(13), c.usage.total(user))
		require.NoError(t, c.overGRPC(t, tok))
		require.Equal(t, codes.ResourceExhausted, status.Code(c.overGRPC(t, tok)), "14 of 14")
		now.Store(c.usage.reset.UnixNano())
		require.NoError(t, c.overGRPC(t, tok))
		require.NoError(t, c.overGRPC(t, tok))
	})
}
