package asset

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"

	usagev1 "github.com/backplane/backplane/gen/backplane/usage/v1"
	"github.com/backplane/backplane/internal/fault"
)

// storageMeter is the usage service's meter of stored bytes. It is a MAX meter: each
// declaration reports the owner's new level (every live asset's bytes, reserved or
// stored), which the owner's plan caps. Giving bytes back needs no call: the next
// declaration reports the lower level.
const storageMeter = "storage_bytes"

// admit asks the usage service whether owner may hold level bytes, adding bytes, and
// counts the new level when so. key makes retries count once. A refusal is
// RESOURCE_EXHAUSTED with a QuotaFailure; a usage service that cannot answer is
// UNAVAILABLE. Without a usage service (tests of other behaviour), everything fits.
func (s *Server) admit(ctx context.Context, owner uuid.UUID, level, bytes int64, key string) error {
	if s.usage == nil {
		return nil
	}
	resp, err := s.usage.ConsumeQuota(ctx, &usagev1.ConsumeQuotaRequest{
		UserId: owner.String(), Meter: storageMeter, Quantity: level, IdempotencyKey: key,
	})
	if err != nil {
		return fault.Wrap(fault.Unavailable, err, "could not check the storage quota; retry")
	}
	if resp.GetAllowed() {
		return nil
	}
	desc := fmt.Sprintf("storing %d more bytes would pass the plan's storage quota", bytes)
	if resp.Limit != nil {
		desc = fmt.Sprintf("storing %d more bytes would take storage to %d bytes, past the plan's %d", bytes, level, resp.GetLimit())
	}
	return fault.New(fault.ResourceExhausted, "the storage quota is used up: delete files or upgrade the plan").
		WithDetails(&errdetails.QuotaFailure{Violations: []*errdetails.QuotaFailure_Violation{{
			Subject: "user:" + owner.String(), Description: desc,
		}}})
}
