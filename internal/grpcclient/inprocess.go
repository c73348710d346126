package grpcclient

import (
	"context"
	"slices"
	"time"

	"google.golang.org/grpc"
)

// InProcess gives conn, a connection to a service that this very process serves (an
// in-process channel), what Dial gives a connection over the network: a default deadline
// for unary calls whose context has none, the caller's request id carried to the
// service, and opts on every call (the caller's service token, which a dial option
// attaches on a network connection). Zero timeout means 10s, as for Dial.
func InProcess(conn grpc.ClientConnInterface, timeout time.Duration, opts ...grpc.CallOption) grpc.ClientConnInterface {
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	return &inProcessConn{conn: conn, timeout: timeout, opts: opts}
}

type inProcessConn struct {
	conn    grpc.ClientConnInterface
	timeout time.Duration
	opts    []grpc.CallOption
}

func (c *inProcessConn) Invoke(ctx context.Context, method string, req, reply any, opts ...grpc.CallOption) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	return c.conn.Invoke(outgoing(ctx), method, req, reply, c.with(opts)...)
}

// NewStream opens a stream with no default deadline: a notification stream may rightly
// stay open for hours.
func (c *inProcessConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return c.conn.NewStream(outgoing(ctx), desc, method, c.with(opts)...)
}

func (c *inProcessConn) with(opts []grpc.CallOption) []grpc.CallOption {
	if len(opts) == 0 {
		return c.opts
	}
	return append(slices.Clip(c.opts), opts...)
}
