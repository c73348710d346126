package handover

import (
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// Transport stands in for a server transport under a call served in process: it
// collects the headers and trailers that interceptors and handlers set (through
// grpc.SetHeader and friends, which look it up in the context), as a real transport
// would send them, for the caller's Header and Trailer call options.
type Transport struct {
	method          string
	mu              sync.Mutex
	header, trailer metadata.MD
}

var _ grpc.ServerTransportStream = (*Transport)(nil)

// NewTransport returns a Transport for a call of method.
func NewTransport(method string) *Transport { return &Transport{method: method} }

// Method is the call's full method name.
func (t *Transport) Method() string { return t.method }

// SetHeader adds md to the header.
func (t *Transport) SetHeader(md metadata.MD) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.header = metadata.Join(t.header, md)
	return nil
}

// SendHeader adds md to the header, which a caller in process reads when it wants it.
func (t *Transport) SendHeader(md metadata.MD) error { return t.SetHeader(md) }

// SetTrailer adds md to the trailer.
func (t *Transport) SetTrailer(md metadata.MD) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.trailer = metadata.Join(t.trailer, md)
	return nil
}

// Header is a copy of the header collected so far.
func (t *Transport) Header() metadata.MD {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.header.Copy()
}

// Trailer is a copy of the trailer collected so far.
func (t *Transport) Trailer() metadata.MD {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.trailer.Copy()
}

// Deliver hands the collected metadata to the caller's grpc.Header and grpc.Trailer
// call options, which is how grpc-gateway learns what to turn into HTTP headers.
func (t *Transport) Deliver(opts []grpc.CallOption) {
	for _, o := range opts {
		switch o := o.(type) {
		case grpc.HeaderCallOption:
			*o.HeaderAddr = t.Header()
		case grpc.TrailerCallOption:
			*o.TrailerAddr = t.Trailer()
		}
	}
}
