package asset

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/google/uuid"
	"gocloud.dev/blob"
	"google.golang.org/genproto/googleapis/rpc/errdetails"

	assetv1 "github.com/backplane/backplane/gen/backplane/asset/v1"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/internal/identity"
	"github.com/backplane/backplane/services/asset/dbsqlc"
)

// objectPrefix is where the files' bytes live in the bucket. Each upload attempt writes
// a key of its own, objects/<asset id>/<attempt id>; the asset's row names the key only
// once the object is complete, so a key no row names is an orphan (a failed attempt
// whose abort did not reach the bucket), which the sweeper erases.
const objectPrefix = "objects/"

func objectKey(asset, attempt uuid.UUID) string {
	return objectPrefix + asset.String() + "/" + attempt.String()
}

// UploadAsset stores a file sent as a stream: metadata (or the id of a PENDING asset),
// then chunks. A file declared here and not stored whole is forgotten; the bytes of a
// PENDING asset named by id that fail leave it PENDING, as UploadAssetContent does.
func (s *Server) UploadAsset(stream assetv1.AssetService_UploadAssetServer) error {
	ctx := stream.Context()
	owner, err := identity.UserID(ctx)
	if err != nil {
		return err
	}
	first, err := stream.Recv()
	switch {
	case errors.Is(err, io.EOF):
		return fault.New(fault.InvalidArgument, "the stream ended before its metadata")
	case err != nil:
		return err
	}
	var a dbsqlc.Asset
	var limit int64
	declared := false
	switch p := first.GetPayload().(type) {
	case *assetv1.UploadAssetRequest_Metadata:
		m := p.Metadata
		a, limit, err = s.declare(ctx, owner, declaration{
			filename: m.GetFilename(), contentType: m.GetContentType(), size: m.GetSizeBytes(),
			sha256: m.GetSha256(), metadata: m.GetMetadata(),
		})
		declared = true
	case *assetv1.UploadAssetRequest_AssetId:
		if a, err = s.pendingAsset(ctx, p.AssetId); err == nil {
			limit, err = s.uploadLimit(ctx, owner)
		}
	default:
		err = fault.New(fault.InvalidArgument, "the first message must carry the metadata or an asset_id")
	}
	if err != nil {
		return err
	}
	next := func() ([]byte, error) {
		msg, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		chunk, ok := msg.GetPayload().(*assetv1.UploadAssetRequest_Chunk)
		if !ok {
			return nil, fault.New(fault.InvalidArgument, "only the first message may carry metadata or an asset_id")
		}
		return chunk.Chunk, nil
	}
	ready, err := s.receive(ctx, a, limit, next)
	if err != nil {
		if declared {
			s.forget(ctx, a)
		}
		return err
	}
	return stream.SendAndClose(&assetv1.UploadAssetResponse{Asset: assetProto(ready)})
}

// UploadAssetContent stores the bytes of a PENDING asset sent whole in one message. The
// REST door's PUT /v1/assets/{id}/content streams into UploadAsset instead, so this
// serves gRPC clients with small files.
func (s *Server) UploadAssetContent(ctx context.Context, req *assetv1.UploadAssetContentRequest) (*assetv1.UploadAssetContentResponse, error) {
	a, err := s.pendingAsset(ctx, req.GetAssetId())
	if err != nil {
		return nil, err
	}
	limit, err := s.uploadLimit(ctx, a.OwnerUserID)
	if err != nil {
		return nil, err
	}
	data := req.GetContent().GetData()
	sent := false
	ready, err := s.receive(ctx, a, limit, func() ([]byte, error) {
		if sent || len(data) == 0 {
			return nil, io.EOF
		}
		sent = true
		return data, nil
	})
	if err != nil {
		return nil, err
	}
	return &assetv1.UploadAssetContentResponse{Asset: assetProto(ready)}, nil
}

// pendingAsset returns the caller's asset id, which must be PENDING.
func (s *Server) pendingAsset(ctx context.Context, id string) (dbsqlc.Asset, error) {
	a, err := s.ownAsset(ctx, id)
	if err != nil {
		return dbsqlc.Asset{}, err
	}
	if a.State != statePending {
		return dbsqlc.Asset{}, fault.New(fault.FailedPrecondition, "the asset's bytes are already stored: upload a new asset instead")
	}
	return a, nil
}

// uploadBuffer is the blob writer's buffer: the size of each part of a multipart upload
// to S3 or GCS, and so, with the driver's concurrency, what an upload holds in memory.
const uploadBuffer = 5 << 20

// receive stores the bytes next yields (io.EOF at their end) as the content of the
// PENDING asset a, and makes it READY. The bytes are hashed, counted against limit (the
// owner's largest file) and the declared size, and their first bytes sniffed, while they stream into a
// key of this attempt's own; any failure aborts the write, so that no object is left and
// the asset stays PENDING.
func (s *Server) receive(ctx context.Context, a dbsqlc.Asset, limit int64, next func() ([]byte, error)) (dbsqlc.Asset, error) {
	attempt, err := uuid.NewV7()
	if err != nil {
		return dbsqlc.Asset{}, fault.Wrap(fault.Internal, err, "could not store the file")
	}
	key := objectKey(a.ID, attempt)
	wctx, abort := context.WithCancel(ctx)
	defer abort()
	w, err := s.bucket.NewWriter(wctx, key, &blob.WriterOptions{
		ContentType: a.ContentType, BufferSize: uploadBuffer, DisableContentTypeDetection: true,
	})
	if err != nil {
		return dbsqlc.Asset{}, fault.Wrap(fault.Unavailable, err, "could not store the file; retry")
	}
	closed := false
	defer func() {
		if !closed {
			abort() // a writer closed with its context canceled discards what it wrote
			_ = w.Close()
		}
	}()
	h := sha256.New()
	var n int64
	head := make([]byte, 0, sniffLen)
	sniffed := false
	for {
		chunk, err := next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return dbsqlc.Asset{}, err
		}
		n += int64(len(chunk))
		if n > limit {
			return dbsqlc.Asset{}, errTooLarge(limit)
		}
		if a.SizeBytes > 0 && n > a.SizeBytes {
			return dbsqlc.Asset{}, errBadContent("size_bytes", fmt.Sprintf("more bytes arrived than the %d declared", a.SizeBytes))
		}
		if !sniffed {
			head = append(head, chunk[:min(len(chunk), sniffLen-len(head))]...)
			if len(head) == sniffLen {
				if err := s.checkType(a, head); err != nil {
					return dbsqlc.Asset{}, err
				}
				sniffed = true
			}
		}
		h.Write(chunk)
		if _, err := w.Write(chunk); err != nil {
			return dbsqlc.Asset{}, fault.Wrap(fault.Unavailable, err, "could not store the file; retry")
		}
	}
	if n == 0 {
		return dbsqlc.Asset{}, errBadContent("content", "the file is empty")
	}
	if !sniffed {
		if err := s.checkType(a, head); err != nil {
			return dbsqlc.Asset{}, err
		}
	}
	if a.SizeBytes > 0 && n != a.SizeBytes {
		return dbsqlc.Asset{}, errBadContent("size_bytes", fmt.Sprintf("%d bytes arrived, not the %d declared", n, a.SizeBytes))
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if a.DeclaredSha256 != nil && *a.DeclaredSha256 != sum {
		return dbsqlc.Asset{}, errBadContent("sha256", "the bytes' SHA-256 is not the one declared")
	}
	closed = true
	if err := w.Close(); err != nil {
		return dbsqlc.Asset{}, fault.Wrap(fault.Unavailable, err, "could not store the file; retry")
	}
	ready, err := s.complete(ctx, a, key, n, sum)
	if err != nil {
		s.eraseObject(context.WithoutCancel(ctx), key)
		return dbsqlc.Asset{}, err
	}
	return ready, nil
}

// checkType refuses bytes whose first bytes contradict the asset's declared type.
func (s *Server) checkType(a dbsqlc.Asset, head []byte) error {
	if agrees(a.ContentType, head) {
		return nil
	}
	return errBadContent("content_type", fmt.Sprintf("the bytes are not of the declared type %s", mediaType(a.ContentType)))
}

func errBadContent(field, description string) error {
	return fault.New(fault.InvalidArgument, description).
		WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: description}}})
}

// complete makes a READY with the object at key, and gives back what its reservation
// held beyond the real size.
func (s *Server) complete(ctx context.Context, a dbsqlc.Asset, key string, size int64, sum string) (dbsqlc.Asset, error) {
	var ready dbsqlc.Asset
	now := s.now()
	err := s.store.inTx(ctx, func(tx *store) error {
		var err error
		ready, err = tx.markReady(ctx, dbsqlc.AssetMarkReadyParams{ID: a.ID, SizeBytes: size, Sha256: &sum, ObjectKey: &key, Now: now})
		if err != nil {
			return err
		}
		if delta := size - a.ReservedBytes; delta != 0 {
			_, err = tx.addLevel(ctx, a.OwnerUserID, delta, now)
		}
		return err
	})
	switch {
	case isNotFound(err):
		return dbsqlc.Asset{}, fault.New(fault.FailedPrecondition, "the asset was deleted or completed by another upload meanwhile")
	case err != nil:
		return dbsqlc.Asset{}, fault.Wrap(fault.Unavailable, err, "could not store the file; retry")
	}
	return ready, nil
}

// forget deletes an asset declared by an upload that failed, giving its reservation
// back. A failure here leaves a PENDING asset, which the sweeper removes after a day.
func (s *Server) forget(ctx context.Context, a dbsqlc.Asset) {
	ctx = context.WithoutCancel(ctx)
	err := s.store.inTx(ctx, func(tx *store) error {
		if _, err := tx.markDeleted(ctx, a.ID, a.OwnerUserID, s.now()); err != nil {
			return err
		}
		_, err := tx.addLevel(ctx, a.OwnerUserID, -a.ReservedBytes, s.now())
		return err
	})
	if err != nil {
		s.log.WarnContext(ctx, "could not forget a failed upload; the sweeper will", "asset_id", a.ID, "error", err)
	}
}

// eraseObject deletes an object, logging a failure: the sweeper erases what is left.
func (s *Server) eraseObject(ctx context.Context, key string) {
	if err := s.bucket.Delete(ctx, key); err != nil && !isBlobNotFound(err) {
		s.log.WarnContext(ctx, "could not erase an object; the sweeper will", "key", key, "error", bucketErrorText(err))
	}
}
