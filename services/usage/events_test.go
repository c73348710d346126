package usage

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	usagev1 "github.com/backplane/backplane/gen/backplane/usage/v1"
)

func TestRecordUsageCountsEachKeyOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	user := uuid.New()

	var first *usagev1.UsageEvent
	t.Run("recorded", func(t *testing.T) {
		resp, err := b.api.user.RecordUsage(b.as(t, user), &usagev1.RecordUsageRequest{
			Meter: "api_calls", Quantity: 3, IdempotencyKey: "req-1", Properties: map[string]string{"endpoint": "/v1/search"},
		})
		require.NoError(t, err)
		require.False(t, resp.GetDuplicate())
		first = resp.GetEvent()
		require.Equal(t, user.String(), first.GetUserId())
		require.Equal(t, int64(3), first.GetQuantity())
		require.Equal(t, map[string]string{"endpoint": "/v1/search"}, first.GetProperties())
		require.WithinDuration(t, time.Now(), first.GetOccurTime().AsTime(), time.Minute, "unset: now")
	})
	t.Run("the same key again is the first event, counted once", func(t *testing.T) {
		resp, err := b.api.user.RecordUsage(b.as(t, user), &usagev1.RecordUsageRequest{Meter: "api_calls", Quantity: 3, IdempotencyKey: "req-1"})
		require.NoError(t, err)
		require.True(t, resp.GetDuplicate())
		require.Equal(t, first.GetId(), resp.GetEvent().GetId())
		require.Equal(t, first.GetProperties(), resp.GetEvent().GetProperties(), "as first recorded")
		require.Equal(t, int64(3), b.summary(t, user)["api_calls"].GetTotal())
	})
	t.Run("the same key for another quantity or meter is refused", func(t *testing.T) {
		for _, req := range []*usagev1.RecordUsageRequest{
			{Meter: "api_calls", Quantity: 4, IdempotencyKey: "req-1"},
			{Meter: "emails_sent", Quantity: 3, IdempotencyKey: "req-1"},
		} {
			_, err := b.api.user.RecordUsage(b.as(t, user), req)
			require.Equal(t, codes.AlreadyExists, status.Code(err), "%v", req)
		}
		require.Equal(t, int64(3), b.summary(t, user)["api_calls"].GetTotal())
	})
	t.Run("keys are per user", func(t *testing.T) {
		other := uuid.New()
		resp := b.record(t, other, "api_calls", 5, "req-1")
		require.False(t, resp.GetDuplicate())
		require.Equal(t, int64(5), b.summary(t, other)["api_calls"].GetTotal())
	})
	t.Run("an unknown meter is refused", func(t *testing.T) {
		_, err := b.api.user.RecordUsage(b.as(t, user), &usagev1.RecordUsageRequest{Meter: "bananas", Quantity: 1, IdempotencyKey: "req-2"})
		require.Equal(t, codes.InvalidArgument, status.Code(err))
	})
	t.Run("usage past the limit is recorded", func(t *testing.T) {
		b.record(t, user, "api_calls", 500, "req-3")
		m := b.summary(t, user)["api_calls"]
		require.Equal(t, int64(503), m.GetTotal())
		require.Equal(t, int64(100), m.GetLimit())
		require.Zero(t, m.GetRemaining(), "never below 0")
	})
	t.Run("an API key needs usage:write", func(t *testing.T) {
		req := &usagev1.RecordUsageRequest{Meter: "api_calls", Quantity: 1, IdempotencyKey: "req-4"}
		_, err := b.api.user.RecordUsage(b.withKey(t, user, "usage:read"), req)
		require.Equal(t, codes.PermissionDenied, status.Code(err))
		_, err = b.api.user.RecordUsage(b.withKey(t, user, "usage:write"), req)
		require.NoError(t, err)
	})
}

func TestAggregations(t *testing.T) {
	t.Parallel()
	b := setup(t)
	user := uuid.New()
	for i, q := range []int64{300, 700, 200} {
		b.record(t, user, "storage_bytes", q, fmt.Sprint("s", i))
		b.record(t, user, "emails_sent", q, fmt.Sprint("e", i))
		b.record(t, user, "api_calls", q, fmt.Sprint("a", i))
	}
	m := b.summary(t, user)
	require.Equal(t, int64(700), m["storage_bytes"].GetTotal(), "MAX: the largest")
	require.Equal(t, int64(3), m["emails_sent"].GetTotal(), "COUNT: the events")
	require.Equal(t, int64(1200), m["api_calls"].GetTotal(), "SUM: the quantities")
	require.Zero(t, m["seats"].GetTotal(), "unused this period")
	require.Nil(t, m["seats"].Limit, "unlimited")
	require.Equal(t, "seats", m["seats"].GetUnit())
}

func TestRecordUsageBatchJudgesEachEvent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	user := uuid.New()
	b.record(t, user, "api_calls", 2, "old")

	resp, err := b.api.user.RecordUsageBatch(b.as(t, user), &usagev1.RecordUsageBatchRequest{Events: []*usagev1.RecordUsageRequest{
		{Meter: "api_calls", Quantity: 10, IdempotencyKey: "a"},        // 0 recorded
		{Meter: "api_calls", Quantity: 0, IdempotencyKey: "b"},         // 1 malformed
		{Meter: "bananas", Quantity: 1, IdempotencyKey: "c"},           // 2 unknown meter
		{Meter: "api_calls", Quantity: 2, IdempotencyKey: "old"},       // 3 duplicate of an earlier call
		{Meter: "api_calls", Quantity: 3, IdempotencyKey: "old"},       // 4 key reused
		{Meter: "api_calls", Quantity: 10, IdempotencyKey: "a"},        // 5 duplicate within the batch
		{Meter: "emails_sent", Quantity: 10, IdempotencyKey: "a"},      // 6 key reused within the batch
		{Meter: "emails_sent", Quantity: 1, IdempotencyKey: "d"},       // 7 recorded
		{Meter: "api_calls", Quantity: 1, IdempotencyKey: "has space"}, // 8 malformed key
	}})
	require.NoError(t, err)
	r := resp.GetResults()
	require.Len(t, r, 9)
	outcome := func(i int) usagev1.RecordOutcome { return r[i].GetOutcome() }
	require.Equal(t, usagev1.RecordOutcome_RECORD_OUTCOME_RECORDED, outcome(0))
	require.NotEmpty(t, r[0].GetEventId())
	for _, i := range []int{1, 2, 8} {
		require.Equal(t, usagev1.RecordOutcome_RECORD_OUTCOME_REFUSED, outcome(i), i)
		require.Equal(t, int32(codes.InvalidArgument), r[i].GetCode(), i)
		require.NotEmpty(t, r[i].GetMessage(), i)
		require.Empty(t, r[i].GetEventId(), i)
	}
	require.Equal(t, usagev1.RecordOutcome_RECORD_OUTCOME_DUPLICATE, outcome(3))
	require.Equal(t, usagev1.RecordOutcome_RECORD_OUTCOME_REFUSED, outcome(4))
	require.Equal(t, int32(codes.AlreadyExists), r[4].GetCode())
	require.Equal(t, usagev1.RecordOutcome_RECORD_OUTCOME_DUPLICATE, outcome(5))
	require.Equal(t, r[0].GetEventId(), r[5].GetEventId(), "the event recorded with the key")
	require.Equal(t, usagev1.RecordOutcome_RECORD_OUTCOME_REFUSED, outcome(6))
	require.Equal(t, int32(codes.AlreadyExists), r[6].GetCode())
	require.Equal(t, usagev1.RecordOutcome_RECORD_OUTCOME_RECORDED, outcome(7))

	m := b.summary(t, user)
	require.Equal(t, int64(12), m["api_calls"].GetTotal())
	require.Equal(t, int64(1), m["emails_sent"].GetTotal())
	require.Equal(t, int64(3), b.count(t, "SELECT count(*) FROM events WHERE user_id = $1", user))

	t.Run("too many events is a bad request", func(t *testing.T) {
		events := make([]*usagev1.RecordUsageRequest, 1001)
		for i := range events {
			events[i] = &usagev1.RecordUsageRequest{Meter: "api_calls", Quantity: 1, IdempotencyKey: fmt.Sprint(i)}
		}
		_, err := b.api.user.RecordUsageBatch(b.as(t, user), &usagev1.RecordUsageBatchRequest{Events: events})
		require.Equal(t, codes.InvalidArgument, status.Code(err))
	})
	t.Run("a thousand events go in at once", func(t *testing.T) {
		events := make([]*usagev1.RecordUsageRequest, 1000)
		for i := range events {
			events[i] = &usagev1.RecordUsageRequest{Meter: "api_calls", Quantity: 1, IdempotencyKey: fmt.Sprint("k", i)}
		}
		resp, err := b.api.user.RecordUsageBatch(b.as(t, user), &usagev1.RecordUsageBatchRequest{Events: events})
		require.NoError(t, err)
		for _, r := range resp.GetResults() {
			require.Equal(t, usagev1.RecordOutcome_RECORD_OUTCOME_RECORDED, r.GetOutcome())
		}
		require.Equal(t, int64(1012), b.summary(t, user)["api_calls"].GetTotal())
	})
}

func TestIngestUsageIsForServicesAndReportsStandings(t *testing.T) {
	t.Parallel()
	b := setup(t)
	free, pro := uuid.New(), uuid.New()
	now := time.Now().UTC()
	b.subscribe(t, pro, "pro", now.Add(-time.Hour), now.Add(29*24*time.Hour))

	req := &usagev1.IngestUsageRequest{Events: []*usagev1.UserUsage{
		{UserId: free.String(), Usage: &usagev1.RecordUsageRequest{Meter: "api_calls", Quantity: 80, IdempotencyKey: "edge:1"}},
		{UserId: pro.String(), Usage: &usagev1.RecordUsageRequest{Meter: "api_calls", Quantity: 7, IdempotencyKey: "edge:1"}},
		{UserId: "not-a-uuid", Usage: &usagev1.RecordUsageRequest{Meter: "api_calls", Quantity: 1, IdempotencyKey: "edge:1"}},
	}}
	_, err := b.api.user.IngestUsage(b.as(t, free), req)
	require.Equal(t, codes.PermissionDenied, status.Code(err), "a user's credential never opens it")

	resp, err := b.api.internal.IngestUsage(t.Context(), req)
	require.NoError(t, err)
	require.Equal(t, usagev1.RecordOutcome_RECORD_OUTCOME_RECORDED, resp.GetResults()[0].GetOutcome())
	require.Equal(t, usagev1.RecordOutcome_RECORD_OUTCOME_RECORDED, resp.GetResults()[1].GetOutcome())
	require.Equal(t, usagev1.RecordOutcome_RECORD_OUTCOME_REFUSED, resp.GetResults()[2].GetOutcome())
	standings := map[string]*usagev1.QuotaStanding{}
	for _, s := range resp.GetStandings() {
		standings[s.GetUserId()] = s
	}
	require.Len(t, standings, 2)
	require.Equal(t, int64(80), standings[free.String()].GetTotal())
	require.Equal(t, int64(100), standings[free.String()].GetLimit())
	require.Equal(t, int64(20), standings[free.String()].GetRemaining())
	_, monthEnd := calendarMonth(now).start, calendarMonth(now).end
	require.Equal(t, monthEnd, standings[free.String()].GetResetTime().AsTime())
	require.Equal(t, int64(1000), standings[pro.String()].GetLimit(), "the subscribed plan's limit")
	require.Equal(t, now.Add(29*24*time.Hour).Truncate(time.Microsecond), standings[pro.String()].GetResetTime().AsTime(), "the subscription's period")
}

func TestListUsageEventsPagesNewestFirst(t *testing.T) {
	t.Parallel()
	b := setup(t)
	user := uuid.New()
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	for i := range 5 {
		_, err := b.api.user.RecordUsage(b.as(t, user), &usagev1.RecordUsageRequest{
			Meter: "api_calls", Quantity: int64(i + 1), IdempotencyKey: fmt.Sprint("k", i), OccurTime: timestamppb.New(base.Add(time.Duration(i) * time.Minute)),
		})
		require.NoError(t, err)
	}
	b.record(t, user, "emails_sent", 1, "mail")
	b.record(t, uuid.New(), "api_calls", 1, "someone-elses")

	var got []int64
	token := ""
	for pages := 0; ; pages++ {
		resp, err := b.api.user.ListUsageEvents(b.as(t, user), &usagev1.ListUsageEventsRequest{PageSize: 2, Meter: "api_calls", PageToken: token})
		require.NoError(t, err)
		for _, e := range resp.GetEvents() {
			got = append(got, e.GetQuantity())
		}
		token = resp.GetNextPageToken()
		if token == "" {
			require.Equal(t, 2, pages)
			break
		}
	}
	require.Equal(t, []int64{5, 4, 3, 2, 1}, got)

	resp, err := b.api.user.ListUsageEvents(b.as(t, user), &usagev1.ListUsageEventsRequest{
		StartTime: timestamppb.New(base.Add(time.Minute)), EndTime: timestamppb.New(base.Add(3 * time.Minute)),
	})
	require.NoError(t, err)
	require.Len(t, resp.GetEvents(), 2, "[start, end)")

	first, err := b.api.user.ListUsageEvents(b.as(t, user), &usagev1.ListUsageEventsRequest{PageSize: 1})
	require.NoError(t, err)
	_, err = b.api.user.ListUsageEvents(b.as(t, user), &usagev1.ListUsageEventsRequest{PageSize: 1, Meter: "emails_sent", PageToken: first.GetNextPageToken()})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "a token is for its filters")
}

func TestListMeters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var names []string
	token := ""
	for {
		resp, err := b.api.user.ListMeters(t.Context(), &usagev1.ListMetersRequest{PageSize: 3, PageToken: token})
		require.NoError(t, err, "no credential needed")
		for _, m := range resp.GetMeters() {
			names = append(names, m.GetName())
			if m.GetName() == "storage_bytes" {
				require.Equal(t, usagev1.Aggregation_AGGREGATION_MAX, m.GetAggregation())
				require.Equal(t, "bytes", m.GetUnit())
			}
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	require.Equal(t, []string{"api_calls", "emails_sent", "seats", "storage_bytes"}, names)
}

// A batch is stored whole or not at all: the events, their keys and their totals are
// written by one statement. A month with no partition fails that statement, and leaves
// nothing behind that would make the retry a duplicate.
func TestABatchIsStoredWholeOrNotAtAll(t *testing.T) {
	t.Parallel()
	c := &clock{}
	b := setup(t, withClock(c))
	user := uuid.New()
	c.Set(time.Date(2031, 3, 10, 12, 0, 0, 0, time.UTC)) // no partition this far ahead
	req := &usagev1.RecordUsageBatchRequest{Events: []*usagev1.RecordUsageRequest{
		{Meter: "api_calls", Quantity: 4, IdempotencyKey: "a"},
		{Meter: "emails_sent", Quantity: 1, IdempotencyKey: "b"},
	}}
	_, err := b.api.user.RecordUsageBatch(b.as(t, user), req)
	require.Equal(t, codes.Unavailable, status.Code(err))
	for _, table := range []string{"events", "idempotency_keys", "totals", "alerts"} {
		require.Zero(t, b.count(t, "SELECT count(*) FROM "+table+" WHERE user_id = $1", user), table)
	}

	require.NoError(t, b.srv.upkeep(t.Context()), "the month's partition")
	resp, err := b.api.user.RecordUsageBatch(b.as(t, user), req)
	require.NoError(t, err)
	for _, r := range resp.GetResults() {
		require.Equal(t, usagev1.RecordOutcome_RECORD_OUTCOME_RECORDED, r.GetOutcome(), "the retry records")
	}
	require.Equal(t, int64(4), b.summary(t, user)["api_calls"].GetTotal())
}

// Partners and servers send batches with an API key, which must hold usage:write.
func TestRecordUsageBatchWithAnAPIKey(t *testing.T) {
	t.Parallel()
	b := setup(t)
	user := uuid.New()
	req := &usagev1.RecordUsageBatchRequest{Events: []*usagev1.RecordUsageRequest{{Meter: "api_calls", Quantity: 2, IdempotencyKey: "k"}}}
	_, err := b.api.user.RecordUsageBatch(b.withKey(t, user, "usage:read"), req)
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	resp, err := b.api.user.RecordUsageBatch(b.withKey(t, user, "usage:write"), req)
	require.NoError(t, err)
	require.Equal(t, usagev1.RecordOutcome_RECORD_OUTCOME_RECORDED, resp.GetResults()[0].GetOutcome())
	require.Equal(t, int64(2), b.summary(t, user)["api_calls"].GetTotal())
}
