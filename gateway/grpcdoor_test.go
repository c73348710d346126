package gateway

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/metadata"
)

// recordingStream is a call's server stream as grpc-go keeps it: what was set and
// what was sent, each call recorded.
type recordingStream struct {
	set, sent, trailer []metadata.MD
}

func (*recordingStream) Method() string { return "/svc/Method" }
func (s *recordingStream) SetHeader(md metadata.MD) error {
	s.set = append(s.set, md)
	return nil
}
func (s *recordingStream) SendHeader(md metadata.MD) error {
	s.sent = append(s.sent, md)
	return nil
}
func (s *recordingStream) SetTrailer(md metadata.MD) error {
	s.trailer = append(s.trailer, md)
	return nil
}

// The door hands a call's headers to its stream once, whole: sent ahead of a reply,
// set on a failure (so that they travel with its status, as before); what a setter
// reuses afterwards is not what was sent, and trailers pass straight through.
func TestHeaderBatchHandsTheHeaderOverOnce(t *testing.T) {
	t.Parallel()
	fill := func(h *headerBatch) {
		id := metadata.MD{"x-request-id": {"r"}}
		require.NoError(t, h.SetHeader(id))
		id["x-request-id"][0] = "reused"
		require.NoError(t, h.SetHeader(metadata.MD{"ratelimit-remaining": {"9"}}))
		require.NoError(t, h.SetHeader(metadata.MD{"x-request-id": {"r"}}))
		require.NoError(t, h.SetTrailer(metadata.MD{"x-t": {"1"}}))
	}
	want := metadata.MD{"x-request-id": {"r", "r"}, "ratelimit-remaining": {"9"}}

	t.Run("a reply", func(t *testing.T) {
		t.Parallel()
		s := &recordingStream{}
		h := &headerBatch{stream: s}
		fill(h)
		require.Empty(t, s.set)
		require.Empty(t, s.sent)
		h.flush(true)
		require.Equal(t, []metadata.MD{want}, s.sent)
		require.Empty(t, s.set)
		require.Equal(t, []metadata.MD{{"x-t": {"1"}}}, s.trailer)
		require.NoError(t, h.SetHeader(metadata.MD{"x-late": {"1"}}))
		require.Equal(t, []metadata.MD{{"x-late": {"1"}}}, s.set, "a late header goes to the stream, which refuses it")
	})
	t.Run("a failure", func(t *testing.T) {
		t.Parallel()
		s := &recordingStream{}
		h := &headerBatch{stream: s}
		fill(h)
		h.flush(false)
		require.Equal(t, []metadata.MD{want}, s.set)
		require.Empty(t, s.sent)
	})
	t.Run("a handler sending its header itself", func(t *testing.T) {
		t.Parallel()
		s := &recordingStream{}
		h := &headerBatch{stream: s}
		fill(h)
		require.NoError(t, h.SendHeader(metadata.MD{"x-own": {"1"}}))
		h.flush(true)
		require.Equal(t, []metadata.MD{{"x-request-id": {"r", "r"}, "ratelimit-remaining": {"9"}, "x-own": {"1"}}}, s.sent, "sent once, with all")
		require.Empty(t, s.set)
	})
}
