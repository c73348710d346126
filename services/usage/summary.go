package usage

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	usagev1 "github.com/backplane/backplane/gen/backplane/usage/v1"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/internal/identity"
	"github.com/backplane/backplane/internal/plans"
)

// GetUsageSummary answers the caller's standing in the period under way, per meter: one
// read of the period's totals, one row per meter used, whatever the number of events.
func (s *Server) GetUsageSummary(ctx context.Context, req *usagev1.GetUsageSummaryRequest) (*usagev1.GetUsageSummaryResponse, error) {
	userID, err := identity.UserID(ctx)
	if err != nil {
		return nil, err
	}
	meters := s.catalog.Meters()
	if req.GetMeter() != "" {
		m, err := s.meter(req.GetMeter())
		if err != nil {
			return nil, err
		}
		meters = []plans.Meter{m}
	}
	ent, err := s.plans.get(ctx, userID)
	if err != nil {
		return nil, err
	}
	per := ent.periodAt(s.now())
	rows, err := s.store.totals(ctx, userID, per.start)
	if err != nil {
		return nil, fault.Wrap(fault.Unavailable, err, "could not read the usage")
	}
	totals := make(map[string]int64, len(rows))
	for _, r := range rows {
		totals[r.Meter] = r.Total
	}
	resp := &usagev1.GetUsageSummaryResponse{
		PlanId:      ent.planID,
		PeriodStart: timestamppb.New(per.start),
		PeriodEnd:   timestamppb.New(per.end),
	}
	for _, m := range meters {
		mu := &usagev1.MeterUsage{Meter: m.Name, Unit: m.Unit, Total: totals[m.Name]}
		if limit, ok := ent.limit(m.Name); ok {
			mu.Limit = new(limit)
			mu.Remaining = new(max(0, limit-mu.GetTotal()))
		}
		resp.Meters = append(resp.Meters, mu)
	}
	return resp, nil
}
