package handover

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// The receiver holds the sender's values themselves: the chunk's bytes are the same
// array, not a copy, and unknown bytes come along.
func TestFieldsSharesValuesWithoutCopying(t *testing.T) {
	t.Parallel()
	src := &httpbody.HttpBody{ContentType: "image/png", Data: []byte("chunk")}
	src.ProtoReflect().SetUnknown([]byte{0xf8, 0x01, 0x01}) // field 31, varint 1
	dst := &httpbody.HttpBody{}
	Fields(dst.ProtoReflect(), src.ProtoReflect())
	require.True(t, proto.Equal(src, dst))
	require.Same(t, &src.Data[0], &dst.Data[0], "the bytes are shared, not copied")
	require.Equal(t, []byte(src.ProtoReflect().GetUnknown()), []byte(dst.ProtoReflect().GetUnknown()))
}

// Metadata set on the transport reaches the caller as set, whatever the setter does with
// its own metadata afterwards; once delivered, the caller owns it and a late setter (a
// goroutine its handler left behind) is refused, as by a finished server stream.
func TestTransportDeliversWhatWasSetAndRefusesLateSetters(t *testing.T) {
	t.Parallel()
	tr := NewTransport("/svc/Method")
	md := metadata.Pairs("x-a", "1")
	require.NoError(t, tr.SetHeader(md))
	md["x-a"][0] = "reused" // the setter's own metadata, reused
	require.NoError(t, tr.SetHeader(metadata.Pairs("x-a", "2", "x-b", "3")))
	require.NoError(t, tr.SetTrailer(metadata.Pairs("x-t", "4")))
	require.NoError(t, tr.SetTrailer(nil))

	var header, trailer metadata.MD
	tr.Deliver([]grpc.CallOption{grpc.Header(&header), grpc.Trailer(&trailer)})
	require.Equal(t, metadata.MD{"x-a": {"1", "2"}, "x-b": {"3"}}, header)
	require.Equal(t, metadata.MD{"x-t": {"4"}}, trailer)

	require.Error(t, tr.SetHeader(metadata.Pairs("x-late", "1")))
	require.Error(t, tr.SetTrailer(metadata.Pairs("x-late", "1")))
	require.Equal(t, metadata.MD{"x-a": {"1", "2"}, "x-b": {"3"}}, header, "the caller's header is its own")
}
