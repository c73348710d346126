package usage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	usagev1 "github.com/backplane/backplane/gen/backplane/usage/v1"
	"github.com/backplane/backplane/internal/database"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/internal/identity"
	"github.com/backplane/backplane/internal/plans"
	"github.com/backplane/backplane/services/usage/dbsqlc"
)

// ConsumeQuota counts usage against the user's quota when it fits, atomically across
// replicas: the decision and the count are one statement on the period's totals row,
// which it locks (store.consume). Retries with the same key get the first answer.
func (s *Server) ConsumeQuota(ctx context.Context, req *usagev1.ConsumeQuotaRequest) (*usagev1.ConsumeQuotaResponse, error) {
	if _, err := identity.CallingService(ctx); err != nil {
		return nil, err
	}
	userID := uuid.MustParse(req.GetUserId()) // validated: a UUID
	meter, err := s.meter(req.GetMeter())
	if err != nil {
		return nil, err
	}
	ent, err := s.plans.get(ctx, userID)
	if err != nil {
		return nil, err
	}
	now := s.now()
	per := ent.periodAt(now)
	amount := req.GetQuantity()
	if meter.Aggregation == plans.Count {
		amount = 1
	}
	eventID, err := uuid.NewV7()
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "could not consume the quota")
	}
	rows, err := s.store.consume(ctx, dbsqlc.TotalConsumeParams{
		UserID: userID, IdempotencyKey: req.GetIdempotencyKey(), Meter: meter.Name,
		PeriodStart: per.start, PeriodEnd: per.end, Aggregation: string(meter.Aggregation),
		QuotaLimit: ent.sqlLimit(meter.Name), Amount: amount, Quantity: req.GetQuantity(),
		Now: now, EventID: eventID,
	})
	if errors.Is(err, database.ErrConflict) || (err == nil && len(rows) == 0) {
		// The key was claimed before, or by a concurrent call that committed first.
		return s.priorConsume(ctx, userID, req)
	}
	if err != nil {
		return nil, fault.Wrap(fault.Unavailable, err, "could not consume the quota; retry with the same idempotency_key")
	}
	row := rows[0]
	alerts := make([]alertKey, len(row.Raised))
	for i, th := range row.Raised {
		alerts[i] = alertKey{UserID: userID, Meter: meter.Name, PeriodStart: per.start, Threshold: th}
	}
	s.raise(ctx, alerts)
	limit, limited := ent.limit(meter.Name)
	return consumeAnswer(row.Counted, row.Total, limit, limited, per.end, false), nil
}

// priorConsume answers a ConsumeQuota whose key was claimed before: the first answer,
// when the first call was the same.
func (s *Server) priorConsume(ctx context.Context, userID uuid.UUID, req *usagev1.ConsumeQuotaRequest) (*usagev1.ConsumeQuotaResponse, error) {
	k, err := s.store.key(ctx, userID, req.GetIdempotencyKey())
	if err != nil {
		return nil, fault.Wrap(fault.Unavailable, err, "could not consume the quota; retry with the same idempotency_key")
	}
	if k.Kind != "consume" || k.Meter != req.GetMeter() || k.Quantity != req.GetQuantity() || k.Allowed == nil {
		return nil, errKeyReused()
	}
	var total int64
	if k.Total != nil {
		total = *k.Total
	}
	var end time.Time
	if k.PeriodEnd != nil {
		end = *k.PeriodEnd
	}
	var limit int64
	if k.QuotaLimit != nil {
		limit = *k.QuotaLimit
	}
	return consumeAnswer(*k.Allowed, total, limit, k.QuotaLimit != nil, end, true), nil
}

func consumeAnswer(allowed bool, total, limit int64, limited bool, end time.Time, duplicate bool) *usagev1.ConsumeQuotaResponse {
	resp := &usagev1.ConsumeQuotaResponse{Allowed: allowed, ResetTime: timestamppb.New(end), Duplicate: duplicate}
	if limited {
		resp.Limit = new(limit)
		resp.Remaining = new(max(0, limit-total))
	}
	return resp
}

// CheckQuota says whether a quantity would fit the user's quota now, counting nothing.
func (s *Server) CheckQuota(ctx context.Context, req *usagev1.CheckQuotaRequest) (*usagev1.CheckQuotaResponse, error) {
	if _, err := identity.CallingService(ctx); err != nil {
		return nil, err
	}
	userID := uuid.MustParse(req.GetUserId()) // validated: a UUID
	meter, err := s.meter(req.GetMeter())
	if err != nil {
		return nil, err
	}
	ent, err := s.plans.get(ctx, userID)
	if err != nil {
		return nil, err
	}
	per := ent.periodAt(s.now())
	total, err := s.periodTotal(ctx, userID, meter.Name, per)
	if err != nil {
		return nil, err
	}
	resp := &usagev1.CheckQuotaResponse{Allowed: true, ResetTime: timestamppb.New(per.end)}
	if limit, ok := ent.limit(meter.Name); ok {
		resp.Allowed = fits(meter.Aggregation, total, req.GetQuantity(), limit)
		resp.Limit = new(limit)
		resp.Remaining = new(max(0, limit-total))
	}
	return resp, nil
}

// fits reports whether using quantity more keeps a period's total within limit: on a
// MAX meter quantity is the new level (0: the level now), on a COUNT meter any
// quantity is one event.
func fits(agg plans.Aggregation, total, quantity, limit int64) bool {
	switch agg {
	case plans.Max:
		if quantity == 0 {
			quantity = total
		}
		return quantity <= limit
	case plans.Count:
		return total+min(quantity, 1) <= limit
	default:
		return total+quantity <= limit
	}
}

// periodTotal is the user's total on a meter in a period; 0 before any use.
func (s *Server) periodTotal(ctx context.Context, userID uuid.UUID, meter string, per period) (int64, error) {
	t, err := s.store.total(ctx, userID, meter, per.start)
	switch {
	case isNotFound(err):
		return 0, nil
	case err != nil:
		return 0, fault.Wrap(fault.Unavailable, err, "could not read the usage")
	}
	return t.Total, nil
}

// meter returns the catalogue's meter of that name, or INVALID_ARGUMENT.
func (s *Server) meter(name string) (plans.Meter, error) {
	m, ok := s.catalog.Meter(name)
	if !ok {
		return plans.Meter{}, fault.New(fault.InvalidArgument, fmt.Sprintf("there is no meter %q: ListMeters lists them", name))
	}
	return m, nil
}
