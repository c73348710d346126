package usage

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	usagev1 "github.com/backplane/backplane/gen/backplane/usage/v1"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/internal/plans"
	"github.com/backplane/backplane/services/usage/dbsqlc"
)

// How events are recorded, whichever RPC brings them (RecordUsage, RecordUsageBatch,
// IngestUsage): a batch is checked event by event, then stored in one statement
// (store.record), which claims each key, inserts the events whose key it claimed, adds
// them to their period's totals and raises the alerts those totals pass.

// usageEvent is one event to record, checked.
type usageEvent struct {
	userID     uuid.UUID
	meter      plans.Meter
	quantity   int64
	key        string
	occurTime  time.Time
	properties map[string]string
}

// recordResult is what became of one event.
type recordResult struct {
	outcome usagev1.RecordOutcome
	// eventID is the event's, or for a duplicate the one first recorded with its key.
	eventID uuid.UUID
	// occurTime and createTime are the event's, for a recorded one; for a duplicate,
	// occurTime is the first event's.
	occurTime, createTime time.Time
	// err says why a refused event was refused.
	err *fault.Error
}

// standing is a user's total on a meter after a batch, in the period under way.
type standing struct {
	userID uuid.UUID
	meter  string
	total  int64
	limit  *int64
	end    time.Time
}

// errKeyReused answers an idempotency key already used for other work.
func errKeyReused() *fault.Error {
	return fault.New(fault.AlreadyExists, "this idempotency_key was already used with another meter or quantity")
}

// entitlementFetches bounds the calls to the subscription service that one batch of
// many users' events makes at once, on a cold cache.
const entitlementFetches = 8

// record records events, each as RecordUsage would, and returns a result per event in
// their order, and the standing of every total they counted on in the period under way.
// An error means nothing was recorded.
func (s *Server) record(ctx context.Context, events []usageEvent) ([]recordResult, []standing, error) {
	now := s.now()
	ents, err := s.entitlementsOf(ctx, events)
	if err != nil {
		return nil, nil, err
	}
	results := make([]recordResult, len(events))

	// A key sent twice in one batch is stored once, with its first event; the others
	// are judged against that one when its fate is known.
	type userKey struct {
		user uuid.UUID
		key  string
	}
	first := map[userKey]int{}
	repeatOf := make([]int, len(events)) // the earlier event with the same key, or -1
	var stored []int                     // indexes into events, of those sent to the database
	for i, e := range events {
		repeatOf[i] = -1
		if j, seen := first[userKey{e.userID, e.key}]; seen {
			repeatOf[i] = j
			continue
		}
		first[userKey{e.userID, e.key}] = i
		stored = append(stored, i)
	}
	// One lock order for every batch: keys by (user, key), totals by (user, meter,
	// period) in the statement itself.
	slices.SortFunc(stored, func(a, b int) int {
		if c := bytes.Compare(events[a].userID[:], events[b].userID[:]); c != 0 {
			return c
		}
		return cmp.Compare(events[a].key, events[b].key)
	})

	p := dbsqlc.EventsRecordParams{Now: now}
	periods := make([]period, len(stored))
	for n, i := range stored {
		e := events[i]
		ent := ents[e.userID]
		per := ent.periodAt(e.occurTime)
		periods[n] = per
		props, err := json.Marshal(e.properties)
		if err != nil {
			return nil, nil, fault.Wrap(fault.Internal, err, "could not record the usage")
		}
		if e.properties == nil {
			props = []byte("{}")
		}
		id, err := uuid.NewV7()
		if err != nil {
			return nil, nil, fault.Wrap(fault.Internal, err, "could not record the usage")
		}
		results[i].eventID, results[i].occurTime, results[i].createTime = id, e.occurTime, now
		p.Ids = append(p.Ids, id)
		p.UserIds = append(p.UserIds, e.userID)
		p.Meters = append(p.Meters, e.meter.Name)
		p.Aggregations = append(p.Aggregations, string(e.meter.Aggregation))
		p.Quantities = append(p.Quantities, e.quantity)
		p.IdempotencyKeys = append(p.IdempotencyKeys, e.key)
		p.OccurTimes = append(p.OccurTimes, e.occurTime)
		p.PeriodStarts = append(p.PeriodStarts, per.start)
		p.PeriodEnds = append(p.PeriodEnds, per.end)
		p.Properties = append(p.Properties, string(props))
		p.QuotaLimits = append(p.QuotaLimits, ent.sqlLimit(e.meter.Name))
		p.StripeItemIds = append(p.StripeItemIds, ent.items[e.meter.Name])
	}
	rows, err := s.store.record(ctx, p)
	if err != nil {
		return nil, nil, fault.Wrap(fault.Unavailable, err, "could not record the usage; retry with the same idempotency keys")
	}

	var (
		raced     = map[uuid.UUID][]int{} // keys claimed by a batch that committed after ours began
		alerts    []alertKey
		standings []standing
		counted   = map[standingKey]bool{}
	)
	for _, row := range rows {
		n := int(row.Ord) - 1
		i := stored[n]
		e := events[i]
		switch {
		case row.Claimed:
			results[i].outcome = usagev1.RecordOutcome_RECORD_OUTCOME_RECORDED
		case row.PriorEventID != nil:
			results[i] = judgeDuplicate(e, "record", *row.PriorKind, *row.PriorMeter, *row.PriorQuantity, *row.PriorEventID, row.PriorOccurTime)
		default:
			raced[e.userID] = append(raced[e.userID], i)
		}
		per := periods[n]
		for _, th := range row.Raised {
			alerts = append(alerts, alertKey{UserID: e.userID, Meter: e.meter.Name, PeriodStart: per.start, Threshold: th})
		}
		sk := standingKey{e.userID, e.meter.Name, per.start}
		if row.PeriodTotal != nil && !counted[sk] && per.contains(now) {
			counted[sk] = true
			st := standing{userID: e.userID, meter: e.meter.Name, total: *row.PeriodTotal, end: per.end}
			if l, ok := ents[e.userID].limit(e.meter.Name); ok {
				st.limit = &l
			}
			standings = append(standings, st)
		}
	}
	for user, idx := range raced {
		if err := s.judgeRaced(ctx, user, events, idx, results); err != nil {
			return nil, nil, err
		}
	}
	for i, j := range repeatOf {
		if j >= 0 {
			results[i] = judgeRepeat(events[i], events[j], results[j])
		}
	}
	s.raise(ctx, alerts)
	return results, standings, nil
}

type standingKey struct {
	user   uuid.UUID
	meter  string
	period time.Time
}

// entitlementsOf reads the entitlements of every user with an event, a few at a time.
func (s *Server) entitlementsOf(ctx context.Context, events []usageEvent) (map[uuid.UUID]*entitlements, error) {
	out := map[uuid.UUID]*entitlements{}
	var users []uuid.UUID
	for _, e := range events {
		if _, ok := out[e.userID]; !ok {
			out[e.userID] = nil
			users = append(users, e.userID)
		}
	}
	found := make([]*entitlements, len(users))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(entitlementFetches)
	for i, u := range users {
		g.Go(func() error {
			e, err := s.plans.get(gctx, u)
			found[i] = e
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for i, u := range users {
		out[u] = found[i]
	}
	return out, nil
}

// judgeDuplicate decides an event whose key another piece of work claimed first: a
// duplicate when that work was the same, else the key was reused.
func judgeDuplicate(e usageEvent, kind, priorKind, priorMeter string, priorQuantity int64, priorEvent uuid.UUID, priorOccur *time.Time) recordResult {
	if priorKind != kind || priorMeter != e.meter.Name || priorQuantity != e.quantity {
		return recordResult{outcome: usagev1.RecordOutcome_RECORD_OUTCOME_REFUSED, err: errKeyReused()}
	}
	r := recordResult{outcome: usagev1.RecordOutcome_RECORD_OUTCOME_DUPLICATE, eventID: priorEvent}
	if priorOccur != nil {
		r.occurTime = *priorOccur
	}
	return r
}

// judgeRepeat decides an event whose key came earlier in the same batch, from what
// became of the earlier one.
func judgeRepeat(e, earlier usageEvent, got recordResult) recordResult {
	switch {
	case got.outcome == usagev1.RecordOutcome_RECORD_OUTCOME_REFUSED:
		return got
	case e.meter.Name != earlier.meter.Name || e.quantity != earlier.quantity:
		return recordResult{outcome: usagev1.RecordOutcome_RECORD_OUTCOME_REFUSED, err: errKeyReused()}
	}
	return recordResult{outcome: usagev1.RecordOutcome_RECORD_OUTCOME_DUPLICATE, eventID: got.eventID, occurTime: got.occurTime}
}

// judgeRaced decides the events of user whose keys a concurrent batch claimed after
// the statement that stored ours began, which therefore could not see the claims: they
// are read again, now committed.
func (s *Server) judgeRaced(ctx context.Context, user uuid.UUID, events []usageEvent, idx []int, results []recordResult) error {
	keys := make([]string, len(idx))
	for n, i := range idx {
		keys[n] = events[i].key
	}
	claims, err := s.store.keys(ctx, user, keys)
	if err != nil {
		return fault.Wrap(fault.Unavailable, err, "could not record the usage; retry with the same idempotency keys")
	}
	byKey := map[string]dbsqlc.IdempotencyKey{}
	for _, c := range claims {
		byKey[c.IdempotencyKey] = c
	}
	for _, i := range idx {
		c, ok := byKey[events[i].key]
		if !ok {
			return fault.New(fault.Aborted, "a concurrent request changed the usage; retry with the same idempotency keys")
		}
		results[i] = judgeDuplicate(events[i], "record", c.Kind, c.Meter, c.Quantity, c.EventID, &c.OccurTime)
	}
	return nil
}
