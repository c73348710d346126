package gateway

import (
	"context"
	"io"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/backplane/backplane/internal/handover"
)

// chainConn is the connection behind the REST front door. It runs each call through the
// very interceptor chain of the gRPC front door, in process, then forwards it to the
// service: one implementation of every policy serves both doors, without a network hop
// between them.
type chainConn struct {
	routes map[string]*route
	unary  grpc.UnaryServerInterceptor
	stream grpc.StreamServerInterceptor
}

var _ grpc.ClientConnInterface = (*chainConn)(nil)

// serverSide turns the client-side context grpc-gateway built (outgoing metadata from
// the HTTP request) into the server-side context the interceptors expect.
func serverSide(ctx context.Context, sts grpc.ServerTransportStream) context.Context {
	md, _ := metadata.FromOutgoingContext(ctx)
	ctx = metadata.NewIncomingContext(ctx, md)
	ctx = metadata.NewOutgoingContext(ctx, nil)
	return grpc.NewContextWithServerTransportStream(ctx, sts)
}

// Invoke runs a unary call through the chain.
func (c *chainConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	r := c.routes[method]
	if r == nil {
		return status.Errorf(codes.Unimplemented, "unknown method %s", method)
	}
	sts := handover.NewTransport(method)
	_, err := c.unary(serverSide(ctx, sts), args, &grpc.UnaryServerInfo{FullMethod: method},
		func(ctx context.Context, req any) (any, error) {
			in, err := asMessage(req)
			if err != nil {
				return nil, err
			}
			out, err := asMessage(reply)
			if err != nil {
				return nil, err
			}
			if err := r.invoke(ctx, in, out); err != nil {
				return nil, err
			}
			return reply, nil
		})
	sts.Deliver(opts)
	return err
}

// NewStream runs a streaming call through the chain, connected to the returned client
// stream by channels.
func (c *chainConn) NewStream(ctx context.Context, _ *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	r := c.routes[method]
	if r == nil {
		return nil, status.Errorf(codes.Unimplemented, "unknown method %s", method)
	}
	ctx, cancel := context.WithCancel(ctx)
	p := &pipe{
		Transport:  handover.NewTransport(method),
		ctx:        ctx,
		cancel:     cancel,
		toServer:   make(chan proto.Message, 1),
		toClient:   make(chan proto.Message),
		headerSent: make(chan struct{}),
		done:       make(chan struct{}),
		opts:       opts,
	}
	p.serverCtx = serverSide(ctx, p.Transport)
	go func() {
		err := c.stream(nil, (*pipeServer)(p), &grpc.StreamServerInfo{
			FullMethod: method, IsClientStream: r.clientStreams, IsServerStream: r.serverStreams,
		}, func(_ any, ss grpc.ServerStream) error { return r.pump(ss) })
		p.finish(err)
	}()
	return (*pipeClient)(p), nil
}

// pipe joins a client stream (held by grpc-gateway) and a server stream (run through the
// chain) in one process.
type pipe struct {
	*handover.Transport
	// mu guards headerExplicit.
	mu             sync.Mutex
	headerExplicit bool // the server sent its header before ending
	ctx, serverCtx context.Context
	cancel         context.CancelFunc
	toServer       chan proto.Message
	toClient       chan proto.Message
	headerOnce     sync.Once
	headerSent     chan struct{}
	closeSendOnce  sync.Once
	done           chan struct{}
	err            error
	opts           []grpc.CallOption
}

func (p *pipe) sendHeader() { p.headerOnce.Do(func() { close(p.headerSent) }) }

// release cancels the stream's context once the stream is over.
func (p *pipe) release() { p.cancel() }

func (p *pipe) finish(err error) {
	p.err = err
	p.sendHeader()
	close(p.done)
	p.Deliver(p.opts)
}

// pipeServer is the server's end.
type pipeServer pipe

func (s *pipeServer) Context() context.Context { return s.serverCtx }

func (s *pipeServer) SetHeader(md metadata.MD) error { return s.Transport.SetHeader(md) }

func (s *pipeServer) SendHeader(md metadata.MD) error {
	_ = s.Transport.SetHeader(md)
	s.mu.Lock()
	s.headerExplicit = true
	s.mu.Unlock()
	(*pipe)(s).sendHeader()
	return nil
}

func (s *pipeServer) SetTrailer(md metadata.MD) { _ = s.Transport.SetTrailer(md) }

func (s *pipeServer) SendMsg(m any) error {
	s.mu.Lock()
	s.headerExplicit = true
	s.mu.Unlock()
	(*pipe)(s).sendHeader()
	msg, err := asMessage(m)
	if err != nil {
		return err
	}
	select {
	case s.toClient <- msg:
		return nil
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
}

func (s *pipeServer) RecvMsg(m any) error {
	select {
	case msg, ok := <-s.toServer:
		if !ok {
			return io.EOF
		}
		return mergeInto(m, msg)
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
}

// pipeClient is grpc-gateway's end.
type pipeClient pipe

// Header waits for the server's header. A stream refused before it sent anything (by
// authentication, say) reports its error here, so grpc-gateway answers with the error's
// own HTTP status rather than a 200 that breaks off.
func (c *pipeClient) Header() (metadata.MD, error) {
	select {
	case <-c.headerSent:
	case <-c.ctx.Done():
		return nil, c.ctx.Err()
	}
	select {
	case <-c.done:
		c.mu.Lock()
		explicit := c.headerExplicit
		c.mu.Unlock()
		if !explicit && c.err != nil {
			return c.Transport.Header(), c.err
		}
	default:
	}
	return c.Transport.Header(), nil
}

func (c *pipeClient) Trailer() metadata.MD { return c.Transport.Trailer() }

func (c *pipeClient) CloseSend() error {
	c.closeSendOnce.Do(func() { close(c.toServer) })
	return nil
}

func (c *pipeClient) Context() context.Context { return c.ctx }

// SendMsg hands a message to the server. Like a real transport it buffers one, so the
// request of a server stream is accepted even when the server refuses the stream before
// reading it; the refusal then arrives through Header and RecvMsg, as gRPC reports it.
func (c *pipeClient) SendMsg(m any) error {
	msg, err := asMessage(m)
	if err != nil {
		return err
	}
	select {
	case c.toServer <- msg:
		return nil
	default:
	}
	select {
	case c.toServer <- msg:
		return nil
	case <-c.done:
		return io.EOF
	case <-c.ctx.Done():
		return c.ctx.Err()
	}
}

func (c *pipeClient) RecvMsg(m any) error {
	select {
	case msg := <-c.toClient:
		return mergeInto(m, msg)
	case <-c.done:
		// Messages sent before the end are delivered first: SendMsg blocks until taken.
		// The client has now seen the end, so the stream's context is released here
		// rather than when the HTTP request's ends.
		(*pipe)(c).release()
		if c.err == nil {
			return io.EOF
		}
		return c.err
	case <-c.ctx.Done():
		return c.ctx.Err()
	}
}

// asMessage is where a value from gRPC's untyped stream API becomes a protobuf message.
// Every message on a Backplane route is one; anything else is a bug, reported as
// INTERNAL rather than as a panic on a stream's goroutine.
func asMessage(v any) (proto.Message, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, status.Errorf(codes.Internal, "gateway: %T is not a protobuf message", v)
	}
	return m, nil
}

// mergeInto fills dst, the receiver's message, with a received message. An empty dst
// of the same type takes msg's fields as they are, without copying them: a sender may
// not touch a message once sent (grpc.ClientStream.SendMsg), and copying every chunk of
// a file as it crosses the pipe would double the edge's work on uploads and downloads.
func mergeInto(dst any, msg proto.Message) error {
	m, err := asMessage(dst)
	if err != nil {
		return err
	}
	d, s := m.ProtoReflect(), msg.ProtoReflect()
	if d.Type() != s.Type() || !empty(d) {
		proto.Merge(m, msg)
		return nil
	}
	handover.Fields(d, s)
	return nil
}

// empty reports whether m has no field set.
func empty(m protoreflect.Message) bool {
	set := false
	m.Range(func(protoreflect.FieldDescriptor, protoreflect.Value) bool {
		set = true
		return false
	})
	return !set && len(m.GetUnknown()) == 0
}
