package grpccodec_test

import (
	"bytes"
	"math/rand/v2"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
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

// Register adds the codec under its own name, over gRPC's codec, and leaves "proto"
// gRPC's own; a second call changes nothing.
func TestRegisterAddsItsOwnName(t *testing.T) { //nolint:paralleltest // changes gRPC's process-wide registry
	grpccodec.Register()
	grpccodec.Register()
	_, replaced := encoding.GetCodecV2("proto").(grpccodec.Codec)
	require.False(t, replaced, "the proto codec is still gRPC's")
	c, ok := encoding.GetCodecV2(grpccodec.Name).(grpccodec.Codec)
	require.True(t, ok, "the codec named %s is %T", grpccodec.Name, encoding.GetCodecV2(grpccodec.Name))
	msg := &httpbody.HttpBody{Data: noise(64 << 10)}
	out, err := c.Marshal(msg)
	require.NoError(t, err)
	got := &httpbody.HttpBody{}
	require.NoError(t, grpccodec.New().Unmarshal(frames(out.Materialize()), got))
	require.True(t, proto.Equal(msg, got))
}

// Over a real connection, only a call that opts in goes through the codec, at both
// ends: it arrives with the codec's content-subtype and its answer is read into the
// codec's pool. A call that does not (every other call) keeps gRPC's codec.
func TestOnlyCallsThatOptInUseTheCodec(t *testing.T) { //nolint:paralleltest // registers the codec process-wide
	grpccodec.Register()
	types := make(chan string, 1)
	srv := grpc.NewServer(grpc.UnknownServiceHandler(func(_ any, ss grpc.ServerStream) error {
		md, _ := metadata.FromIncomingContext(ss.Context())
		types <- strings.Join(md.Get("content-type"), ",")
		msg := &httpbody.HttpBody{}
		if err := ss.RecvMsg(msg); err != nil {
			return err
		}
		return ss.SendMsg(msg)
	}))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })

	echo := func(opts ...grpc.CallOption) (*httpbody.HttpBody, string) {
		cs, err := conn.NewStream(t.Context(), &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, "/test.Echo/Echo", opts...)
		require.NoError(t, err)
		sent := &httpbody.HttpBody{ContentType: "a/b", Data: noise(100<<10 + 3)}
		require.NoError(t, cs.SendMsg(sent))
		require.NoError(t, cs.CloseSend())
		got := &httpbody.HttpBody{}
		require.NoError(t, cs.RecvMsg(got))
		require.True(t, proto.Equal(sent, got))
		return got, <-types
	}
	got, ct := echo(grpccodec.CallOption())
	require.Equal(t, "application/grpc+"+grpccodec.Name, ct)
	require.Equal(t, grpccodec.BodySize, cap(got.GetData()), "read into the codec's pool")

	got, ct = echo()
	require.Equal(t, "application/grpc", ct)
	require.Less(t, cap(got.GetData()), grpccodec.BodySize, "read by gRPC's codec")
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
	out, err = encoding.GetCodecV2("proto").Marshal(other) // gRPC's own
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
