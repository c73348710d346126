package handover

import (
	"errors"
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
	// delivered is set once Deliver has handed the metadata to the caller, which owns
	// it from then on.
	delivered bool
}

var _ grpc.ServerTransportStream = (*Transport)(nil)

// errDelivered answers metadata set after the call's end, as a finished server
// stream's transport does.
var errDelivered = errors.New("handover: the call has ended; its metadata was delivered")

// NewTransport returns a Transport for a call of method.
func NewTransport(method string) *Transport { return &Transport{method: method} }

// Method is the call's full method name.
func (t *Transport) Method() string { return t.method }

// SetHeader adds md to the header.
func (t *Transport) SetHeader(md metadata.MD) error { return t.set(&t.header, md) }

// SendHeader adds md to the header, which a caller in process reads when it wants it.
func (t *Transport) SendHeader(md metadata.MD) error { return t.SetHeader(md) }

// SetTrailer adds md to the trailer.
func (t *Transport) SetTrailer(md metadata.MD) error { return t.set(&t.trailer, md) }

// set adds md to *to, unless the call's metadata has been delivered.
func (t *Transport) set(to *metadata.MD, md metadata.MD) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.delivered {
		return errDelivered
	}
	*to = Add(*to, md)
	return nil
}

// Add appends md's values to to's, in place, and returns to (made if nil and md
// has any): metadata.Join would copy all of to on every call, and several
// interceptors set headers on every call. The values are copied, as a transport's
// are, so that the setter may reuse md.
func Add(to, md metadata.MD) metadata.MD {
	if len(md) == 0 {
		return to
	}
	if to == nil {
		to = make(metadata.MD, len(md))
	}
	for k, v := range md {
		to[k] = append(to[k], v...)
	}
	return to
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
// call options, which is how grpc-gateway learns what to turn into HTTP headers. It
// ends the call: the caller receives the metadata itself, not a copy, and whatever
// sets metadata later (a goroutine the handler left behind) is refused.
func (t *Transport) Deliver(opts []grpc.CallOption) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.delivered = true
	for _, o := range opts {
		switch o := o.(type) {
		case grpc.HeaderCallOption:
			*o.HeaderAddr = t.header
		case grpc.TrailerCallOption:
			*o.TrailerAddr = t.trailer
		}
	}
}
