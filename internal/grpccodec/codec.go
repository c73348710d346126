// Package grpccodec is a protobuf codec for the calls that stream files (the asset
// service's downloads), which moves the bytes of large google.api.HttpBody messages
// with fewer copies than gRPC's own: sending one puts its Data on the wire without first
// copying it into a marshal buffer, and receiving one copies the bytes from the
// transport's frames once, straight into the message, where the default codec first
// joins the frames into one buffer and then copies the field out of it. Every other
// message, and every HttpBody this codec does not recognise the shape of, goes through
// gRPC's default codec unchanged.
//
// It is registered under a name of its own (Name), not as gRPC's "proto", so that it
// carries only the calls that ask for it: a client opts a call in with CallOption, which
// sends Name as the call's content-subtype, and a gRPC server answers a call with the
// codec the call named. Every other call, and any peer that does not ask for it, keeps
// gRPC's codec. Both ends must have registered it: a server that has not answers with
// its "proto" codec, which reads the same bytes.
//
// The send side relies on gRPC's contract that a sent message is not modified
// afterwards (grpc.ServerStream.SendMsg): the transport writes Data after SendMsg
// returns, so a sender hands each message a buffer of its own. A sender that streams
// many such messages borrows them from the codec's pool (NewBody), and the transport
// hands each buffer back once it is on the wire; a receiver that is done with a body's
// bytes hands them back with Recycle. The pool spares both ends an allocation, and the
// garbage collection it causes, per message: in the edge, collections driven by those
// allocations took a third of its CPU during a download.
package grpccodec

import (
	"encoding/binary"
	"errors"
	"io"
	"math"
	"sync"
	"unicode/utf8"

	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// minDirect is the smallest Data moved without copies: below it a copy costs less than
// the bookkeeping.
const minDirect = 32 << 10

// Name is the codec's name in gRPC's registry and a call's content-subtype
// ("application/grpc+proto-httpbody"). It is protobuf on the wire, as "proto" is.
const Name = "proto-httpbody"

// Codec is the codec.
type Codec struct {
	base encoding.CodecV2
}

var _ encoding.CodecV2 = Codec{}

var register sync.Once

// Register adds Codec to gRPC's registry under Name, for clients and servers alike,
// leaving the "proto" codec gRPC's own. Call it before any gRPC connection or server
// starts (gRPC's registry is not safe for use concurrently with registration); later
// calls do nothing.
func Register() {
	register.Do(func() { encoding.RegisterCodecV2(New()) })
}

// CallOption opts a call in: it names the codec as the call's content-subtype, so that
// the client encodes and decodes with it and the server answers with it.
func CallOption() grpc.CallOption { return grpc.CallContentSubtype(Name) }

// New returns the codec, over gRPC's default codec.
func New() Codec {
	return Codec{base: encoding.GetCodecV2(grpcproto.Name)}
}

// Name is the codec's registered name, Name.
func (Codec) Name() string { return Name }

// Marshal encodes v. An HttpBody with a large Data and nothing but a content type
// besides is sent as its encoded head followed by Data itself; a Body's Data goes back
// to the pool once the transport has written it.
func (c Codec) Marshal(v any) (mem.BufferSlice, error) {
	var data mem.Buffer
	b, ok := v.(*httpbody.HttpBody)
	if body, borrowed := v.(Body); borrowed {
		b, ok = body.HttpBody, true
		*body.buf = b.GetData()
		data = mem.NewBuffer(body.buf, pool)
	}
	if !ok || len(b.GetData()) < minDirect || len(b.GetExtensions()) > 0 || len(b.ProtoReflect().GetUnknown()) > 0 {
		if data != nil {
			defer data.Free()
			return c.base.Marshal(b)
		}
		return c.base.Marshal(v)
	}
	if data == nil {
		data = mem.SliceBuffer(b.GetData())
	}
	head := make([]byte, 0, 16+len(b.GetContentType()))
	if ct := b.GetContentType(); ct != "" {
		head = protowire.AppendTag(head, 1, protowire.BytesType)
		head = protowire.AppendString(head, ct)
	}
	head = protowire.AppendTag(head, 2, protowire.BytesType)
	head = protowire.AppendVarint(head, uint64(len(b.GetData())))
	return mem.BufferSlice{mem.SliceBuffer(head), data}, nil
}

// errShape is an HttpBody this codec leaves to the default codec.
var errShape = errors.New("grpccodec: not a plain HttpBody")

// Unmarshal decodes data into v. A large HttpBody of a content type and Data only is
// read straight from the frames; any other shape is left to the default codec, which
// reports what is wrong with it, if anything is.
func (c Codec) Unmarshal(data mem.BufferSlice, v any) error {
	b, ok := v.(*httpbody.HttpBody)
	if !ok || data.Len() < minDirect {
		return c.base.Unmarshal(data, v)
	}
	ct, body, err := readBody(data)
	if err != nil {
		return c.base.Unmarshal(data, v)
	}
	proto.Reset(b)
	b.ContentType, b.Data = ct, body
	return nil
}

// readBody reads an encoded HttpBody of at most one content_type (field 1) followed by at
// most one data (field 2), copying data once, into a buffer from the pool.
func readBody(data mem.BufferSlice) (contentType string, body []byte, err error) {
	r := data.Reader()
	defer func() { _ = r.Close() }()
	field := protowire.Number(0)
	for r.Remaining() > 0 {
		tag, err := binary.ReadUvarint(r)
		if err != nil {
			return "", nil, errShape
		}
		num, typ := protowire.DecodeTag(tag)
		if typ != protowire.BytesType || num <= field || num > 2 {
			return "", nil, errShape
		}
		field = num
		length, err := binary.ReadUvarint(r)
		if err != nil || length > math.MaxInt32 || int(length) > r.Remaining() {
			return "", nil, errShape
		}
		n := int(length)
		var buf []byte
		if num == 2 {
			buf = *pool.Get(n)
		} else {
			buf = make([]byte, n)
		}
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", nil, errShape
		}
		if num == 1 {
			if !utf8.Valid(buf) {
				return "", nil, errShape
			}
			contentType = string(buf)
			continue
		}
		body = buf
	}
	return contentType, body, nil
}

// BodySize is the largest Data the pool lends: a download's chunk, which a server's
// message limit (1 MiB, grpcserver) bounds.
const BodySize = 1 << 20

// bodyPool lends buffers of up to BodySize bytes, unzeroed: every byte lent is written
// before it is read. Larger ones are allocated, and not kept. It keeps any buffer of
// at least half BodySize it is given, not only its own at their full capacity:
// protobuf's reflection (the edge's in-process pipe hands messages on through it) caps
// a bytes field at its length.
type bodyPool struct{ p sync.Pool }

var pool mem.BufferPool = &bodyPool{}

func (p *bodyPool) Get(n int) *[]byte {
	if n > BodySize {
		b := make([]byte, n)
		return &b
	}
	if b, ok := p.p.Get().(*[]byte); ok && cap(*b) >= n {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, BodySize)
	return &b
}

func (p *bodyPool) Put(b *[]byte) {
	if c := cap(*b); c >= BodySize/2 && c <= BodySize {
		p.p.Put(b)
	}
}

// Body is an HttpBody whose Data is borrowed from the codec's pool. Send it as it is
// (stream.SendMsg(body)), not its HttpBody: the transport returns the buffer when it
// has written it. Any other codec sends it as the HttpBody it holds.
type Body struct {
	*httpbody.HttpBody
	buf *[]byte
}

// NewBody returns a Body of the content type whose Data is n bytes (at most BodySize)
// to fill; their content is whatever the buffer last held.
func NewBody(contentType string, n int) Body {
	buf := pool.Get(min(n, BodySize))
	return Body{HttpBody: &httpbody.HttpBody{ContentType: contentType, Data: *buf}, buf: buf}
}

// Recycle hands b's Data back to the pool, for a body this codec received, once nothing
// refers to its bytes any more; b's Data is nil afterwards. Small Data is left to the
// garbage collector.
func Recycle(b *httpbody.HttpBody) {
	if data := b.GetData(); data != nil {
		pool.Put(&data)
	}
	b.Data = nil
}
