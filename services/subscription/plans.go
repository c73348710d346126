package subscription

import (
	"context"
	"encoding/base64"
	"strconv"

	subscriptionv1 "github.com/backplane/backplane/gen/backplane/subscription/v1"
	"github.com/backplane/backplane/internal/fault"
)

// ListPlans lists the catalogue's plans, cheapest first. With a Stripe key the prices
// are Stripe's (read at most every five minutes); without one, or while Stripe cannot be
// read and nothing was read before, the catalogue file's.
func (s *Server) ListPlans(ctx context.Context, req *subscriptionv1.ListPlansRequest) (*subscriptionv1.ListPlansResponse, error) {
	offset, err := offsetOf(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	size := int(req.GetPageSize())
	if size == 0 {
		size = 50
	}
	prices, err := s.prices.get(ctx)
	if err != nil {
		s.log.WarnContext(ctx, "Stripe prices unavailable: showing the last read, else the catalogue file's", "error", err.Error())
	}
	all := s.catalog.Plans()
	resp := &subscriptionv1.ListPlansResponse{}
	for i := offset; i < len(all) && i < offset+size; i++ {
		p := all[i]
		var pr price
		if p.Price != nil {
			pr = prices[p.Price.LookupKey]
		}
		resp.Plans = append(resp.Plans, planToProto(p, pr))
	}
	if offset+size < len(all) {
		resp.NextPageToken = offsetToken(offset + size)
	}
	return resp, nil
}

// offsetToken and offsetOf write and read the page token of a list served from memory.
func offsetToken(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("o" + strconv.Itoa(offset)))
}

func offsetOf(token string) (int, error) {
	if token == "" {
		return 0, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err == nil && len(raw) > 1 && raw[0] == 'o' {
		if n, err := strconv.Atoi(string(raw[1:])); err == nil && n >= 0 {
			return n, nil
		}
	}
	return 0, fault.New(fault.InvalidArgument, "page_token is not one this API returned")
}
