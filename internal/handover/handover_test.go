package handover

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/api/httpbody"
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
