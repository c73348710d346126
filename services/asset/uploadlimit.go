package asset

import (
	"context"

	"github.com/google/uuid"

	subscriptionv1 "github.com/backplane/backplane/gen/backplane/subscription/v1"
	"github.com/backplane/backplane/internal/fault"
)

// uploadLimit is the largest file owner may upload: the max_upload_bytes of the plan
// in force for them when it sets one (lower or higher than BACKPLANE_ASSET_MAX_BYTES),
// else BACKPLANE_ASSET_MAX_BYTES; never past the contract's 5 GiB. The plan is asked
// at every declaration and upload rather than cached: an upload is a long call, and one
// indexed read in the subscription service is small beside it. A subscription service
// that cannot answer is UNAVAILABLE, as the quota's usage service is: falling back to
// the service's own limit would let a free plan's users past their plan's.
func (s *Server) uploadLimit(ctx context.Context, owner uuid.UUID) (int64, error) {
	if s.plans == nil {
		return s.cfg.MaxBytes, nil
	}
	resp, err := s.plans.GetEntitlements(ctx, &subscriptionv1.GetEntitlementsRequest{UserId: owner.String()})
	if err != nil {
		return 0, fault.Wrap(fault.Unavailable, err, "could not read the plan's upload limit; retry")
	}
	if n := resp.GetMaxUploadBytes(); n > 0 {
		return min(n, maxMaxBytes), nil
	}
	return s.cfg.MaxBytes, nil
}
