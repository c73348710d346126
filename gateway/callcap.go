package gateway

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// cappedCallError turns a forwarded call that the edge's cap (BACKPLANE_MAX_CALL_TIMEOUT)
// cut short into UNAVAILABLE (503 with Retry-After, RetryInfo on gRPC). The client set
// no deadline that short, so the client did not give up: the service behind the edge
// did not answer in time — its store blackholed or crawling — and the client should come
// back shortly. DEADLINE_EXCEEDED (504, which clients do not retry) stays the answer
// when the client's own deadline was the one that passed.
//
// client is the call's context as the client sent it, capped the one the call ran
// under. The service, bound by the same deadline, may reset the stream a moment before
// the edge's own timer fires, so the test is on the deadlines, not on which timer fired.
func cappedCallError(client, capped context.Context, err error) error {
	if status.Code(err) != codes.DeadlineExceeded || client.Err() != nil {
		return err
	}
	capAt, _ := capped.Deadline()
	if own, ok := client.Deadline(); ok && !own.After(capAt) {
		return err
	}
	return status.Error(codes.Unavailable, "the service did not answer in time; retry shortly")
}
