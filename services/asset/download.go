package asset

import (
	"context"
	"errors"
	"io"
	"net/url"
	"strconv"
	"time"

	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	assetv1 "github.com/backplane/backplane/gen/backplane/asset/v1"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/internal/grpccodec"
	"github.com/backplane/backplane/services/asset/dbsqlc"
)

// The response headers of a download, sent before its first chunk: what the REST door
// needs for Content-Length, ETag, Range and Content-Disposition.
const (
	HeaderSize        = "asset-size"
	HeaderSHA256      = "asset-sha256"
	HeaderFilename    = "asset-filename" // percent-encoded
	HeaderContentType = "asset-content-type"
	// HeaderRedirectURL, when present, is a signed URL of the bucket that serves the
	// whole file: no message follows (the request's accept_redirect, redirect.go).
	HeaderRedirectURL = "asset-redirect-url"
)

// downloadChunk is the size of each message of a download: as large as a server's
// message limit (grpcserver.DefaultMaxMessageBytes, 1 MiB) allows with room for the
// framing, so that the edge relays few messages per file.
const downloadChunk = 1<<20 - 1<<10

// DownloadAssetContent streams the bytes of one of the caller's READY assets.
func (s *Server) DownloadAssetContent(req *assetv1.DownloadAssetContentRequest, stream grpc.ServerStreamingServer[httpbody.HttpBody]) error {
	a, err := s.ownAsset(stream.Context(), req.GetAssetId())
	if err != nil {
		return err
	}
	if a.State != stateReady {
		return fault.New(fault.FailedPrecondition, "the asset's bytes have not been uploaded yet")
	}
	return s.send(stream, a, req.GetReadOffset(), req.GetReadLimit(), req.GetAcceptRedirect())
}

// DownloadSignedAssetContent streams a READY asset's bytes to the holder of a signed
// URL. Every refusal is the same PERMISSION_DENIED, so that a URL reveals nothing
// about assets it does not name.
func (s *Server) DownloadSignedAssetContent(req *assetv1.DownloadSignedAssetContentRequest, stream grpc.ServerStreamingServer[httpbody.HttpBody]) error {
	ctx := stream.Context()
	denied := fault.New(fault.PermissionDenied, "the download URL is not valid or has expired: ask for a new one with GetAsset")
	id := uuid.MustParse(req.GetAssetId()) // validated: a UUID
	if req.GetExpires() <= s.now().Unix() || req.GetExpires() > s.now().Add(downloadURLTTL+time.Minute).Unix() {
		return denied
	}
	a, err := s.store.liveAsset(ctx, id)
	switch {
	case isNotFound(err):
		return denied
	case err != nil:
		return fault.Wrap(fault.Unavailable, err, "could not read the asset")
	}
	if a.State != stateReady || a.Sha256 == nil || !s.signer.valid(a.ID, *a.Sha256, req.GetExpires(), req.GetSignature(), s.now()) {
		return denied
	}
	return s.send(stream, a, req.GetReadOffset(), req.GetReadLimit(), req.GetAcceptRedirect())
}

// send streams limit bytes (0: all) of a's content from offset, after headers that
// describe the whole file. When the caller accepts a redirect, the service makes them,
// and the whole file is asked for, the headers name a signed URL of the bucket instead
// and nothing follows; a URL that cannot be signed leaves the bytes to stream.
func (s *Server) send(stream grpc.ServerStreamingServer[httpbody.HttpBody], a dbsqlc.Asset, offset, limit int64, redirect bool) error {
	ctx := stream.Context()
	if offset >= a.SizeBytes {
		return fault.New(fault.OutOfRange, "read_offset is past the end of the file")
	}
	length := a.SizeBytes - offset
	if limit > 0 && limit < length {
		length = limit
	}
	header := metadata.Pairs(
		HeaderSize, strconv.FormatInt(a.SizeBytes, 10),
		HeaderSHA256, *a.Sha256,
		HeaderFilename, url.PathEscape(a.Filename),
		HeaderContentType, a.ContentType,
	)
	if redirect && s.redirect && offset == 0 && limit == 0 {
		u, err := s.redirectURL(ctx, a)
		if err == nil {
			header.Set(HeaderRedirectURL, u)
			return stream.SendHeader(header)
		}
		s.log.WarnContext(ctx, "a download streams: its redirect URL could not be signed", "asset_id", a.ID, "error", err)
	}
	if err := stream.SendHeader(header); err != nil {
		return err
	}
	r, err := s.bucket.NewRangeReader(ctx, *a.ObjectKey, offset, length, nil)
	if err != nil {
		return fault.Wrap(fault.Unavailable, err, "could not read the file; retry")
	}
	defer func() { _ = r.Close() }()
	for left := length; left > 0; {
		// A buffer per chunk, borrowed from the codec's pool: the file codec
		// (internal/grpccodec, which the edge's calls ask for) sends Data as it is, so the
		// transport may still be writing one chunk when Send returns, and it hands the
		// buffer back once written. gRPC's codec copies it, and leaves it to the GC.
		body := grpccodec.NewBody(a.ContentType, int(min(downloadChunk, left)))
		n, err := io.ReadFull(r, body.Data)
		left -= int64(n)
		if n > 0 {
			body.Data = body.Data[:n]
			if serr := stream.SendMsg(body); serr != nil {
				return serr
			}
		}
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			// The object is shorter than its row says: what there was has been sent.
			return nil
		case err != nil:
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			return fault.Wrap(fault.Unavailable, err, "could not read the file; retry")
		}
	}
	return nil
}
