package grpcserver

import (
	"context"
	"errors"
	"sync"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// reasonShuttingDown marks the UNAVAILABLE with which draining ends a stream, so that
// the front door relaying a service's drain recognises it as an orderly end, not a
// failure to log (normalize, the access log). The reason, not the message, is what
// is matched: messages are for people and may change.
const reasonShuttingDown = "SERVER_SHUTTING_DOWN"

// drainMessage is the message of errShuttingDown.
const drainMessage = "the server is shutting down; reconnect"

// errShuttingDown is the status a draining server ends or refuses a stream with.
func errShuttingDown() error {
	st := status.New(codes.Unavailable, drainMessage)
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: reasonShuttingDown, Domain: "backplane"}); err == nil {
		st = d
	}
	return st.Err()
}

// isShuttingDown reports whether st is a draining server's end of a stream, ours or a
// peer's relayed.
func isShuttingDown(st *status.Status) bool {
	if st.Code() != codes.Unavailable {
		return false
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetReason() == reasonShuttingDown {
			return true
		}
	}
	return false
}

// errDraining is the cause with which draining cancels a stream.
var errDraining = errors.New("grpcserver: the server is draining")

// drainer ends a server's open server streams when it starts to drain: a stream that
// pushes events (live notifications) has no end of its own, so a graceful stop would
// wait the whole shutdown budget for it. Streams where the client sends (uploads) finish
// on their own and are left to the graceful stop.
type drainer struct {
	mu      sync.Mutex
	open    map[*openStream]struct{}
	drained bool
}

type openStream struct {
	cancel context.CancelCauseFunc
}

func newDrainer() *drainer { return &drainer{open: map[*openStream]struct{}{}} }

// intercept ends a server stream with UNAVAILABLE when the server drains, a status
// clients retry on: they reconnect to another replica.
func (d *drainer) intercept(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if info.IsClientStream || !info.IsServerStream {
		return handler(srv, ss)
	}
	ctx, cancel := context.WithCancelCause(ss.Context())
	defer cancel(nil)
	s := &openStream{cancel: cancel}
	d.mu.Lock()
	if d.drained {
		d.mu.Unlock()
		return errShuttingDown()
	}
	d.open[s] = struct{}{}
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.open, s)
		d.mu.Unlock()
	}()
	err := handler(srv, &contextStream{ServerStream: ss, ctx: ctx})
	if errors.Is(context.Cause(ctx), errDraining) {
		return errShuttingDown()
	}
	return err
}

// drain ends every open server stream and refuses new ones; it returns how many it
// ended.
func (d *drainer) drain() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.drained = true
	for s := range d.open {
		s.cancel(errDraining)
	}
	return len(d.open)
}
