package usage

import (
	"cmp"
	"context"
	"encoding/base64"
	"slices"

	usagev1 "github.com/backplane/backplane/gen/backplane/usage/v1"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/internal/plans"
)

// ListMeters lists the catalogue's meters by name. The page token is the last name of
// the page before.
func (s *Server) ListMeters(_ context.Context, req *usagev1.ListMetersRequest) (*usagev1.ListMetersResponse, error) {
	size := int(req.GetPageSize())
	if size == 0 {
		size = defaultPageSize
	}
	meters := s.catalog.Meters()
	slices.SortFunc(meters, func(a, b plans.Meter) int { return cmp.Compare(a.Name, b.Name) })
	if tok := req.GetPageToken(); tok != "" {
		after, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil {
			return nil, fault.New(fault.InvalidArgument, "page_token is not one this listing returned")
		}
		i, _ := slices.BinarySearchFunc(meters, string(after), func(m plans.Meter, name string) int { return cmp.Compare(m.Name, name) })
		for i < len(meters) && meters[i].Name <= string(after) {
			i++
		}
		meters = meters[i:]
	}
	resp := &usagev1.ListMetersResponse{}
	if len(meters) > size {
		meters = meters[:size]
		resp.NextPageToken = base64.RawURLEncoding.EncodeToString([]byte(meters[size-1].Name))
	}
	for _, m := range meters {
		resp.Meters = append(resp.Meters, meterToProto(m))
	}
	return resp, nil
}
