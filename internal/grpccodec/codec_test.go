package grpccodec_test

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/backplane/backplane/internal/grpccodec"
)

func noise(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{3}).Read(b)
	return b
}

// frames cuts b into 16 KiB buffers, as the HTTP/2 transport hands a message over.
func frames(b []byte) mem.BufferSlice {
	var s mem.BufferSlice
	for len(b) > 0 {
		n := min(16<<10, len(b))
		s = append(s, mem.SliceBuffer(bytes.Clone(b[:n])))
		b = b[n:]
	}
	return s
}

// A large HttpBody goes out as its head and its own Data, uncopied, and the bytes are
// exactly protobuf's encoding of the message.
func TestMarshalSendsDataWithoutCopying(t *testing.T) {
	t.Parallel()
	c := grpccodec.New()
	for _, ct := range []string{"application/octet-stream", ""} {
		msg := &httpbody.HttpBody{ContentType: ct, Data: noise(1 << 20)}
		out, err := c.Marshal(msg)
		require.NoError(t, err)
		last := out[len(out)-1].ReadOnlyData()
		require.Same(t, &msg.Data[0], &last[0], "Data was copied")
		want, err := proto.Marshal(msg)
		require.NoError(t, err)
		require.Equal(t, want, out.Materialize())
	}
}

// What the codec does not move itself, it encodes as protobuf does: small bodies, bodies
// with extensions or unknown fields, and other messages.
func TestMarshalOfOtherShapesIsProtobufs(t *testing.T) {
	t.Parallel()
	c := grpccodec.New()
	ext, err := anypb.New(wrapperspb.String("x"))
	require.NoError(t, err)
	unknown := &httpbody.HttpBody{Data: noise(64 << 10)}
	unknown.ProtoReflect().SetUnknown([]byte{0x20, 0x01}) // field 4, varint 1
	for name, msg := range map[string]proto.Message{
		"small":      &httpbody.HttpBody{ContentType: "text/plain", Data: []byte("hi")},
		"extensions": &httpbody.HttpBody{Data: noise(64 << 10), Extensions: []*anypb.Any{ext}},
		"unknown":    unknown,
		"other":      wrapperspb.Bytes(noise(64 << 10)),
	} {
		out, err := c.Marshal(msg)
		require.NoError(t, err, name)
		back := msg.ProtoReflect().New().Interface()
		require.NoError(t, proto.Unmarshal(out.Materialize(), back), name)
		require.True(t, proto.Equal(msg, back), name)
	}
}

// A body that arrives in frames is read back whole, whatever protobuf encoder wrote it,
// and replaces what the message held.
func TestUnmarshalReadsFramedBodies(t *testing.T) {
	t.Parallel()
	c := grpccodec.New()
	ext, err := anypb.New(wrapperspb.String("x"))
	require.NoError(t, err)
	for name, msg := range map[string]*httpbody.HttpBody{
		"plain":       {ContentType: "image/png", Data: noise(1<<20 - 3)},
		"no type":     {Data: noise(100 << 10)},
		"extensions":  {ContentType: "a/b", Data: noise(100 << 10), Extensions: []*anypb.Any{ext}},
		"small":       {ContentType: "a/b", Data: []byte("small")},
		"only a type": {ContentType: strings.Repeat("a", 40<<10)},
	} {
		wire, err := proto.Marshal(msg)
		require.NoError(t, err)
		got := &httpbody.HttpBody{ContentType: "stale", Data: []byte("stale")}
		require.NoError(t, c.Unmarshal(frames(wire), got), name)
		require.True(t, proto.Equal(msg, got), name)
	}
}

// A malformed body is refused, as protobuf refuses it, not half read.
func TestUnmarshalRefusesMalformedBodies(t *testing.T) {
	t.Parallel()
	c := grpccodec.New()
	wire, err := proto.Marshal(&httpbody.HttpBody{ContentType: "a/b", Data: noise(100 << 10)})
	require.NoError(t, err)
	require.Error(t, c.Unmarshal(frames(wire[:len(wire)-1]), &httpbody.HttpBody{}), "truncated")
	bad := append([]byte{0x0a, 0x02, 0xff, 0xfe}, wire[len("\x0a\x03a/b"):]...)
	require.Error(t, c.Unmarshal(frames(bad), &httpbody.HttpBody{}), "a content type that is not UTF-8")
}

// Register installs the codec under gRPC's own name, over gRPC's codec, and a second
// call does not stack it on itself.
func TestRegisterReplacesTheProtoCodec(t *testing.T) { //nolint:paralleltest // changes gRPC's process-wide registry
	grpccodec.Register()
	grpccodec.Register()
	c, ok := encoding.GetCodecV2("proto").(grpccodec.Codec)
	require.True(t, ok, "the proto codec is %T", encoding.GetCodecV2("proto"))
	msg := &httpbody.HttpBody{Data: noise(64 << 10)}
	out, err := c.Marshal(msg)
	require.NoError(t, err)
	got := &httpbody.HttpBody{}
	require.NoError(t, grpccodec.New().Unmarshal(frames(out.Materialize()), got))
	require.True(t, proto.Equal(msg, got))
}

// A borrowed body goes out uncopied too, and a codec that does not know it sends the
// HttpBody it holds.
func TestBorrowedBodies(t *testing.T) {
	t.Parallel()
	body := grpccodec.NewBody("image/png", 200<<10)
	require.Len(t, body.Data, 200<<10)
	copy(body.Data, noise(200<<10))
	want, err := proto.Marshal(body.HttpBody)
	require.NoError(t, err)
	out, err := grpccodec.New().Marshal(body)
	require.NoError(t, err)
	last := out[len(out)-1].ReadOnlyData()
	require.Same(t, &body.Data[0], &last[0], "Data was copied")
	require.Equal(t, want, out.Materialize())
	out.Free()

	small := grpccodec.NewBody("text/plain", 5)
	copy(small.Data, "hello")
	out, err = grpccodec.New().Marshal(small)
	require.NoError(t, err)
	require.Equal(t, "hello", string(out.Materialize()[len(out.Materialize())-5:]))

	other := grpccodec.NewBody("a/b", 64<<10)
	copy(other.Data, noise(64<<10))
	out, err = encoding.GetCodecV2("proto").Marshal(other) // the default, or this codec once registered
	require.NoError(t, err)
	got := &httpbody.HttpBody{}
	require.NoError(t, proto.Unmarshal(out.Materialize(), got))
	require.True(t, proto.Equal(other.HttpBody, got))
}

// A received body's bytes are the pool's, and go back to it.
func TestRecycle(t *testing.T) {
	t.Parallel()
	msg := &httpbody.HttpBody{Data: noise(1<<20 - 1<<10)}
	wire, err := proto.Marshal(msg)
	require.NoError(t, err)
	got := &httpbody.HttpBody{}
	require.NoError(t, grpccodec.New().Unmarshal(frames(wire), got))
	require.Equal(t, grpccodec.BodySize, cap(got.GetData()))
	grpccodec.Recycle(got)
	require.Nil(t, got.GetData())
}

// A body's Data comes back to the pool even after protobuf's reflection has capped it at
// its length, as the edge's in-process pipe does: the next body gets it, not a new one.
func TestRecycledBytesAreLentAgain(t *testing.T) { //nolint:paralleltest // watches the pool, which parallel tests share
	const n = 1<<20 - 1<<10
	for range 5 { // a collection may empty the pool at any time: one reuse in five tries shows it works
		lent := grpccodec.NewBody("", n)
		src := lent.ProtoReflect()
		dst := (&httpbody.HttpBody{}).ProtoReflect()
		src.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool { dst.Set(fd, v); return true })
		relayed := dst.Interface().(*httpbody.HttpBody)
		first := &relayed.Data[0]
		grpccodec.Recycle(relayed)
		if again := grpccodec.NewBody("", n); &again.Data[0] == first {
			return
		}
	}
	t.Fatal("no recycled buffer was lent again")
}
