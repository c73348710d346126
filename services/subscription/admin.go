package subscription

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"time"

	"github.com/google/uuid"

	subscriptionv1 "github.com/backplane/backplane/gen/backplane/subscription/v1"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/services/subscription/dbsqlc"
)

// ListSubscriptions pages through every subscription, newest first, for administrators,
// optionally only those in one status or on one plan. The page token is the position of
// the previous page's last row, (create_time, id), so pages neither skip nor repeat rows
// while subscriptions are added.
func (s *Server) ListSubscriptions(ctx context.Context, req *subscriptionv1.ListSubscriptionsRequest) (*subscriptionv1.ListSubscriptionsResponse, error) {
	size := req.GetPageSize()
	if size == 0 {
		size = 50
	}
	p := dbsqlc.SubscriptionListParams{
		Status: statusName(req.GetStatus()), PlanID: req.GetPlanId(), FirstPage: true,
		AfterTime: time.Unix(0, 0), Max: size + 1,
	}
	if tok := req.GetPageToken(); tok != "" {
		t, id, err := subscriptionCursor(tok)
		if err != nil {
			return nil, err
		}
		p.FirstPage, p.AfterTime, p.AfterID = false, t, id
	}
	rows, err := s.store.listSubscriptions(ctx, p)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "could not list the subscriptions")
	}
	resp := &subscriptionv1.ListSubscriptionsResponse{}
	if len(rows) > int(size) {
		rows = rows[:size]
		last := rows[len(rows)-1]
		resp.NextPageToken = subscriptionToken(last.CreateTime, last.ID)
	}
	for _, r := range rows {
		resp.Subscriptions = append(resp.Subscriptions, subscriptionToProto(r))
	}
	return resp, nil
}

// subscriptionToken writes a position in the list: 's', the time in microseconds (what
// PostgreSQL keeps), the id.
func subscriptionToken(t time.Time, id uuid.UUID) string {
	raw := make([]byte, 0, 1+8+16)
	raw = append(raw, 's')
	raw = binary.BigEndian.AppendUint64(raw, uint64(t.UnixMicro()))
	raw = append(raw, id[:]...)
	return base64.RawURLEncoding.EncodeToString(raw)
}

func subscriptionCursor(token string) (time.Time, uuid.UUID, error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) != 25 || raw[0] != 's' {
		return time.Time{}, uuid.UUID{}, fault.New(fault.InvalidArgument, "page_token is not one this API returned")
	}
	micros := int64(binary.BigEndian.Uint64(raw[1:9])) //nolint:gosec // G115: the bits written by subscriptionToken.
	id, _ := uuid.FromBytes(raw[9:])
	return time.UnixMicro(micros).UTC(), id, nil
}
