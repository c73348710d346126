package usage

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	usagev1 "github.com/backplane/backplane/gen/backplane/usage/v1"
	"github.com/backplane/backplane/internal/database"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/internal/identity"
	"github.com/backplane/backplane/services/usage/dbsqlc"
)

// RecordUsage records one event of the caller.
func (s *Server) RecordUsage(ctx context.Context, req *usagev1.RecordUsageRequest) (*usagev1.RecordUsageResponse, error) {
	userID, err := identity.UserID(ctx)
	if err != nil {
		return nil, err
	}
	e, ferr := s.checkEvent(userID, req)
	if ferr != nil {
		return nil, ferr
	}
	results, _, err := s.record(ctx, []usageEvent{e})
	if err != nil {
		return nil, err
	}
	r := results[0]
	switch r.outcome {
	case usagev1.RecordOutcome_RECORD_OUTCOME_REFUSED:
		return nil, r.err
	case usagev1.RecordOutcome_RECORD_OUTCOME_DUPLICATE:
		first, err := s.store.event(ctx, userID, r.occurTime, r.eventID)
		if err != nil {
			return nil, fault.Wrap(fault.Unavailable, err, "could not read the event first recorded with this key")
		}
		return &usagev1.RecordUsageResponse{Event: eventToProto(first), Duplicate: true}, nil
	}
	return &usagev1.RecordUsageResponse{Event: recordedToProto(e, r)}, nil
}

// RecordUsageBatch records up to 1,000 events of the caller, each judged on its own.
func (s *Server) RecordUsageBatch(ctx context.Context, req *usagev1.RecordUsageBatchRequest) (*usagev1.RecordUsageBatchResponse, error) {
	userID, err := identity.UserID(ctx)
	if err != nil {
		return nil, err
	}
	results, _, err := s.recordChecked(ctx, len(req.GetEvents()), func(i int) (usageEvent, *fault.Error) {
		item := req.GetEvents()[i]
		if ferr := s.checkMessage(item); ferr != nil {
			return usageEvent{}, ferr
		}
		return s.checkEvent(userID, item)
	})
	if err != nil {
		return nil, err
	}
	resp := &usagev1.RecordUsageBatchResponse{Results: make([]*usagev1.RecordUsageResult, len(results))}
	for i, r := range results {
		resp.Results[i] = resultToProto(r)
	}
	return resp, nil
}

// IngestUsage records up to 1,000 events of any users, for Backplane services, and
// says where each user stands on each meter counted.
func (s *Server) IngestUsage(ctx context.Context, req *usagev1.IngestUsageRequest) (*usagev1.IngestUsageResponse, error) {
	if _, err := identity.CallingService(ctx); err != nil {
		return nil, err
	}
	results, standings, err := s.recordChecked(ctx, len(req.GetEvents()), func(i int) (usageEvent, *fault.Error) {
		item := req.GetEvents()[i]
		if ferr := s.checkMessage(item); ferr != nil {
			return usageEvent{}, ferr
		}
		return s.checkEvent(uuid.MustParse(item.GetUserId()), item.GetUsage())
	})
	if err != nil {
		return nil, err
	}
	resp := &usagev1.IngestUsageResponse{Results: make([]*usagev1.RecordUsageResult, len(results))}
	for i, r := range results {
		resp.Results[i] = resultToProto(r)
	}
	for _, st := range standings {
		resp.Standings = append(resp.Standings, standingToProto(st))
	}
	return resp, nil
}

// recordChecked checks n events with check, refusing those it faults, and records the
// rest in one batch.
func (s *Server) recordChecked(ctx context.Context, n int, check func(i int) (usageEvent, *fault.Error)) ([]recordResult, []standing, error) {
	results := make([]recordResult, n)
	var (
		good    []usageEvent
		goodIdx []int
	)
	for i := range n {
		e, ferr := check(i)
		if ferr != nil {
			results[i] = recordResult{outcome: usagev1.RecordOutcome_RECORD_OUTCOME_REFUSED, err: ferr}
			continue
		}
		good = append(good, e)
		goodIdx = append(goodIdx, i)
	}
	var standings []standing
	if len(good) > 0 {
		recorded, st, err := s.record(ctx, good)
		if err != nil {
			return nil, nil, err
		}
		for k, i := range goodIdx {
			results[i] = recorded[k]
		}
		standings = st
	}
	return results, standings, nil
}

// checkMessage checks one event of a batch against the rules its message declares,
// which the batch's own validation leaves to each event.
func (s *Server) checkMessage(msg proto.Message) *fault.Error {
	if err := s.validator.Check(msg); err != nil {
		if fe, ok := errors.AsType[*fault.Error](err); ok {
			return fe
		}
		return fault.Wrap(fault.Internal, err, "could not check the event")
	}
	return nil
}

// checkEvent turns a request into an event of userID: its meter must exist; an unset
// occur_time is now.
func (s *Server) checkEvent(userID uuid.UUID, req *usagev1.RecordUsageRequest) (usageEvent, *fault.Error) {
	meter, ok := s.catalog.Meter(req.GetMeter())
	if !ok {
		return usageEvent{}, fault.New(fault.InvalidArgument, fmt.Sprintf("there is no meter %q: ListMeters lists them", req.GetMeter()))
	}
	occur := s.now()
	if req.GetOccurTime() != nil {
		occur = req.GetOccurTime().AsTime()
	}
	return usageEvent{
		userID:     userID,
		meter:      meter,
		quantity:   req.GetQuantity(),
		key:        req.GetIdempotencyKey(),
		occurTime:  occur.UTC(),
		properties: req.GetProperties(),
	}, nil
}

// Paging through events.
const (
	defaultPageSize = 50
	tokenVersion    = 1
)

// farFuture stands for "no upper bound" on occur_time.
var farFuture = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// eventPageToken is where a page of events ended, and the filters it was taken with.
type eventPageToken struct {
	Version int       `json:"v"`
	Time    time.Time `json:"t"`
	ID      uuid.UUID `json:"i"`
	Filters string    `json:"f"`
}

// ListUsageEvents lists the caller's events, newest first.
func (s *Server) ListUsageEvents(ctx context.Context, req *usagev1.ListUsageEventsRequest) (*usagev1.ListUsageEventsResponse, error) {
	userID, err := identity.UserID(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetMeter() != "" {
		if _, ok := s.catalog.Meter(req.GetMeter()); !ok {
			return nil, fault.New(fault.InvalidArgument, fmt.Sprintf("there is no meter %q: ListMeters lists them", req.GetMeter()))
		}
	}
	size := int(req.GetPageSize())
	if size == 0 {
		size = defaultPageSize
	}
	p := dbsqlc.EventListForUserParams{
		UserID: userID, Meter: req.GetMeter(),
		StartTime: time.Unix(0, 0).UTC(), EndTime: farFuture,
		BeforeTime: farFuture, BeforeID: uuid.Max,
		Max: int32(size + 1),
	}
	if req.GetStartTime() != nil {
		p.StartTime = req.GetStartTime().AsTime()
	}
	if req.GetEndTime() != nil {
		p.EndTime = req.GetEndTime().AsTime()
	}
	filters := filterDigest(req)
	if tok := req.GetPageToken(); tok != "" {
		t, err := decodeEventToken(tok)
		if err != nil || t.Filters != filters {
			return nil, fault.New(fault.InvalidArgument, "page_token is not one this listing returned, or the filters changed")
		}
		p.BeforeTime, p.BeforeID = t.Time, t.ID
	}
	rows, err := s.store.listEvents(ctx, p)
	if err != nil {
		return nil, fault.Wrap(fault.Unavailable, err, "could not list the usage events")
	}
	resp := &usagev1.ListUsageEventsResponse{}
	if len(rows) > size {
		rows = rows[:size]
		last := rows[size-1]
		resp.NextPageToken = encodeEventToken(eventPageToken{Version: tokenVersion, Time: last.OccurTime, ID: last.ID, Filters: filters})
	}
	for _, r := range rows {
		resp.Events = append(resp.Events, eventToProto(r))
	}
	return resp, nil
}

// filterDigest names a listing's filters, so that a token is refused with others.
func filterDigest(req *usagev1.ListUsageEventsRequest) string {
	h := sha256.New()
	_, _ = fmt.Fprintf(h, "%s|%d|%d", req.GetMeter(), req.GetStartTime().AsTime().UnixNano(), req.GetEndTime().AsTime().UnixNano())
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:12])
}

func encodeEventToken(t eventPageToken) string {
	b, _ := json.Marshal(t) // a struct of a time, a UUID, an int and a string always marshals
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeEventToken(s string) (eventPageToken, error) {
	var t eventPageToken
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return t, err
	}
	if err := json.Unmarshal(b, &t); err != nil {
		return t, err
	}
	if t.Version != tokenVersion {
		return t, errors.New("unknown token version")
	}
	return t, nil
}

// isNotFound reports whether a store error is a missing row.
func isNotFound(err error) bool { return errors.Is(err, database.ErrNotFound) }
