package grpcserver

import (
	"context"
	"errors"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

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
		return status.Error(codes.Unavailable, "the server is shutting down; reconnect")
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
		return status.Error(codes.Unavailable, "the server is shutting down; reconnect")
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
