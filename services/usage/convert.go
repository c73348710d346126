package usage

import (
	"encoding/json"

	"google.golang.org/protobuf/types/known/timestamppb"

	usagev1 "github.com/backplane/backplane/gen/backplane/usage/v1"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/internal/plans"
	"github.com/backplane/backplane/services/usage/dbsqlc"
)

var aggregations = map[plans.Aggregation]usagev1.Aggregation{
	plans.Sum:   usagev1.Aggregation_AGGREGATION_SUM,
	plans.Max:   usagev1.Aggregation_AGGREGATION_MAX,
	plans.Count: usagev1.Aggregation_AGGREGATION_COUNT,
}

func meterToProto(m plans.Meter) *usagev1.Meter {
	return &usagev1.Meter{
		Name:        m.Name,
		DisplayName: m.DisplayName,
		Unit:        m.Unit,
		Aggregation: aggregations[m.Aggregation],
	}
}

func eventToProto(e dbsqlc.Event) *usagev1.UsageEvent {
	var props map[string]string
	// Written by record from a map[string]string: it always reads back as one.
	_ = json.Unmarshal(e.Properties, &props)
	if len(props) == 0 {
		props = nil
	}
	return &usagev1.UsageEvent{
		Id:             e.ID.String(),
		UserId:         e.UserID.String(),
		Meter:          e.Meter,
		Quantity:       e.Quantity,
		IdempotencyKey: e.IdempotencyKey,
		OccurTime:      timestamppb.New(e.OccurTime),
		CreateTime:     timestamppb.New(e.CreateTime),
		Properties:     props,
	}
}

// recordedToProto is an event just recorded, from what was sent.
func recordedToProto(e usageEvent, r recordResult) *usagev1.UsageEvent {
	props := e.properties
	if len(props) == 0 {
		props = nil
	}
	return &usagev1.UsageEvent{
		Id:             r.eventID.String(),
		UserId:         e.userID.String(),
		Meter:          e.meter.Name,
		Quantity:       e.quantity,
		IdempotencyKey: e.key,
		OccurTime:      timestamppb.New(r.occurTime),
		CreateTime:     timestamppb.New(r.createTime),
		Properties:     props,
	}
}

// resultToProto is one event's result in a batch.
func resultToProto(r recordResult) *usagev1.RecordUsageResult {
	out := &usagev1.RecordUsageResult{Outcome: r.outcome}
	if r.err != nil {
		st := fault.Status(r.err)
		out.Code, out.Message = int32(st.Code()), st.Message() //nolint:gosec // G115: gRPC codes are 0 to 16.
		return out
	}
	out.EventId = r.eventID.String()
	return out
}

func standingToProto(s standing) *usagev1.QuotaStanding {
	out := &usagev1.QuotaStanding{
		UserId:    s.userID.String(),
		Meter:     s.meter,
		Total:     s.total,
		ResetTime: timestamppb.New(s.end),
	}
	if s.limit != nil {
		out.Limit = s.limit
		out.Remaining = new(max(0, *s.limit-s.total))
	}
	return out
}
