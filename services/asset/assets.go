package asset

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/types/known/timestamppb"

	assetv1 "github.com/backplane/backplane/gen/backplane/asset/v1"
	"github.com/backplane/backplane/internal/authn"
	"github.com/backplane/backplane/internal/database"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/internal/identity"
	"github.com/backplane/backplane/services/asset/dbsqlc"
)

// declaration is what an uploader says of a file before its bytes.
type declaration struct {
	filename    string
	contentType string
	size        int64 // 0: unknown until the bytes end
	sha256      string
	metadata    map[string]string
}

// CreateAsset declares a file: a PENDING asset, its size reserved against the owner's
// storage quota.
func (s *Server) CreateAsset(ctx context.Context, req *assetv1.CreateAssetRequest) (*assetv1.CreateAssetResponse, error) {
	owner, err := identity.UserID(ctx)
	if err != nil {
		return nil, err
	}
	a, _, err := s.declare(ctx, owner, declaration{
		filename: req.GetFilename(), contentType: req.GetContentType(), size: req.GetSizeBytes(),
		sha256: req.GetSha256(), metadata: req.GetMetadata(),
	})
	if err != nil {
		return nil, err
	}
	return &assetv1.CreateAssetResponse{Asset: assetProto(a)}, nil
}

// declare stores a PENDING asset of owner after weighing it against the size limit
// (the owner's plan's, returned for the upload that follows), the allowed types and the
// owner's storage quota. The owner's storage level row is
// locked while the quota is asked, so that declarations of one owner are weighed one at
// a time.
func (s *Server) declare(ctx context.Context, owner uuid.UUID, d declaration) (dbsqlc.Asset, int64, error) {
	if !s.types.allows(d.contentType) {
		return dbsqlc.Asset{}, 0, fault.New(fault.InvalidArgument, fmt.Sprintf("files of type %q are not accepted here", mediaType(d.contentType))).
			WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{
				Field: "content_type", Description: "not one of the accepted media types",
			}}})
	}
	limit, err := s.uploadLimit(ctx, owner)
	if err != nil {
		return dbsqlc.Asset{}, 0, err
	}
	if d.size > limit {
		return dbsqlc.Asset{}, 0, errTooLarge(limit)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return dbsqlc.Asset{}, 0, fault.Wrap(fault.Internal, err, "could not declare the file")
	}
	reserve := d.size
	if reserve == 0 {
		reserve = limit
	}
	var sha *string
	if d.sha256 != "" {
		sha = &d.sha256
	}
	var a dbsqlc.Asset
	now := s.now()
	err = s.store.inTx(ctx, func(tx *store) error {
		level, err := tx.addLevel(ctx, owner, reserve, now)
		if err != nil {
			return fault.Wrap(fault.Unavailable, err, "could not declare the file; retry")
		}
		if err := s.admit(ctx, owner, level, reserve, "asset:"+id.String()); err != nil {
			return err
		}
		a, err = tx.insertAsset(ctx, dbsqlc.AssetInsertParams{
			ID: id, OwnerUserID: owner, Filename: d.filename, ContentType: d.contentType,
			SizeBytes: d.size, ReservedBytes: reserve, DeclaredSha256: sha,
			Metadata: metadataJSON(d.metadata), Now: now,
		})
		if err != nil {
			return fault.Wrap(fault.Unavailable, err, "could not declare the file; retry")
		}
		return nil
	})
	return a, limit, err
}

// errTooLarge is the answer to a file larger than the limit: RESOURCE_EXHAUSTED, which
// the REST door answers with 413.
func errTooLarge(limit int64) error {
	return fault.New(fault.ResourceExhausted, fmt.Sprintf("the file is larger than the %d bytes allowed", limit)).
		WithDetails(&errdetails.ErrorInfo{Reason: ReasonTooLarge, Domain: errorDomain,
			Metadata: map[string]string{"max_bytes": fmt.Sprint(limit)}})
}

// The ErrorInfo of refusals the REST door answers with a status of their own.
const (
	errorDomain = "asset.backplane.dev"
	// ReasonTooLarge marks a file over the size limit (HTTP 413).
	ReasonTooLarge = "ASSET_TOO_LARGE"
)

// GetAsset returns one of the caller's assets and, once READY, a signed download URL.
func (s *Server) GetAsset(ctx context.Context, req *assetv1.GetAssetRequest) (*assetv1.GetAssetResponse, error) {
	a, err := s.ownAsset(ctx, req.GetAssetId())
	if err != nil {
		return nil, err
	}
	resp := &assetv1.GetAssetResponse{Asset: assetProto(a)}
	if a.State == stateReady && a.Sha256 != nil {
		u, exp := s.signer.downloadURL(s.publicURL, a.ID, *a.Sha256, s.now())
		resp.DownloadUrl, resp.DownloadExpireTime = u, timestamppb.New(exp)
	}
	return resp, nil
}

// ownAsset returns the caller's live asset id. Another user's answers NOT_FOUND, as one
// that does not exist: ids are not secrets, but whose they are is.
func (s *Server) ownAsset(ctx context.Context, id string) (dbsqlc.Asset, error) {
	owner, err := identity.UserID(ctx)
	if err != nil {
		return dbsqlc.Asset{}, err
	}
	a, err := s.store.assetForOwner(ctx, uuid.MustParse(id), owner) // validated: a UUID
	switch {
	case isNotFound(err):
		return dbsqlc.Asset{}, errNotFound()
	case err != nil:
		return dbsqlc.Asset{}, fault.Wrap(fault.Unavailable, err, "could not read the asset")
	}
	return a, nil
}

func errNotFound() error { return fault.New(fault.NotFound, "there is no such asset") }

func isNotFound(err error) bool { return errors.Is(err, database.ErrNotFound) }

// Listing.

const (
	defaultPageSize = 50
)

// pageToken is where a listing stopped, with the filters it was made with.
type pageToken struct {
	Before uuid.UUID `json:"b"`
	Prefix string    `json:"p,omitempty"`
	State  string    `json:"s,omitempty"`
	All    bool      `json:"a,omitempty"`
}

func (t pageToken) encode() string {
	b, _ := json.Marshal(t) // a struct of plain fields always marshals
	return base64.RawURLEncoding.EncodeToString(b)
}

// ListAssets lists the caller's live assets, newest first; an admin's listing holds
// everyone's.
func (s *Server) ListAssets(ctx context.Context, req *assetv1.ListAssetsRequest) (*assetv1.ListAssetsResponse, error) {
	owner, err := identity.UserID(ctx)
	if err != nil {
		return nil, err
	}
	p, _ := identity.FromContext(ctx)
	all := p.HasRole(authn.RoleAdmin)
	tok := pageToken{Before: uuid.Max, Prefix: req.GetContentTypePrefix(), State: stateName(req.GetState()), All: all}
	if raw := req.GetPageToken(); raw != "" {
		var got pageToken
		b, err := base64.RawURLEncoding.DecodeString(raw)
		if err != nil || json.Unmarshal(b, &got) != nil || got.Prefix != tok.Prefix || got.State != tok.State || got.All != tok.All {
			return nil, fault.New(fault.InvalidArgument, "page_token is not one this listing returned").
				WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{
					Field: "page_token", Description: "not a token of this listing, with these filters",
				}}})
		}
		tok.Before = got.Before
	}
	size := int32(defaultPageSize)
	if n := req.GetPageSize(); n > 0 {
		size = n
	}
	var state *string
	if tok.State != "" {
		state = &tok.State
	}
	var rows []dbsqlc.Asset
	if all {
		rows, err = s.store.listAll(ctx, dbsqlc.AssetListAllParams{Before: tok.Before, ContentTypePrefix: &tok.Prefix, State: state, Max: size + 1})
	} else {
		rows, err = s.store.listForOwner(ctx, dbsqlc.AssetListForOwnerParams{
			OwnerUserID: owner, Before: tok.Before, ContentTypePrefix: &tok.Prefix, State: state, Max: size + 1,
		})
	}
	if err != nil {
		return nil, fault.Wrap(fault.Unavailable, err, "could not list the assets")
	}
	resp := &assetv1.ListAssetsResponse{}
	if len(rows) > int(size) {
		rows = rows[:size]
		next := tok
		next.Before = rows[size-1].ID
		resp.NextPageToken = next.encode()
	}
	for _, a := range rows {
		resp.Assets = append(resp.Assets, assetProto(a))
	}
	return resp, nil
}

// UpdateAsset renames an asset or replaces its labels.
func (s *Server) UpdateAsset(ctx context.Context, req *assetv1.UpdateAssetRequest) (*assetv1.UpdateAssetResponse, error) {
	a, err := s.ownAsset(ctx, req.GetAsset().GetId())
	if err != nil {
		return nil, err
	}
	in := req.GetAsset()
	paths := req.GetUpdateMask().GetPaths()
	if req.GetUpdateMask() == nil {
		if in.GetFilename() != "" {
			paths = append(paths, "filename")
		}
		if in.GetMetadata() != nil {
			paths = append(paths, "metadata")
		}
	}
	p := dbsqlc.AssetUpdateParams{ID: a.ID, OwnerUserID: a.OwnerUserID, Filename: a.Filename, Metadata: a.Metadata, Now: s.now()}
	for _, path := range paths {
		switch path {
		case "filename":
			p.Filename = in.GetFilename()
		case "metadata":
			p.Metadata = metadataJSON(in.GetMetadata())
		}
	}
	updated, err := s.store.updateAsset(ctx, p)
	switch {
	case isNotFound(err):
		return nil, errNotFound()
	case err != nil:
		return nil, fault.Wrap(fault.Unavailable, err, "could not update the asset")
	}
	return &assetv1.UpdateAssetResponse{Asset: assetProto(updated)}, nil
}

// DeleteAsset makes an asset unreadable at once and gives back its share of the storage
// quota; the sweeper erases its bytes within a minute (jobs.go).
func (s *Server) DeleteAsset(ctx context.Context, req *assetv1.DeleteAssetRequest) (*assetv1.DeleteAssetResponse, error) {
	owner, err := identity.UserID(ctx)
	if err != nil {
		return nil, err
	}
	id := uuid.MustParse(req.GetAssetId()) // validated: a UUID
	var a dbsqlc.Asset
	err = s.store.inTx(ctx, func(tx *store) error {
		var err error
		if a, err = tx.markDeleted(ctx, id, owner, s.now()); err != nil {
			return err
		}
		_, err = tx.addLevel(ctx, owner, -a.ReservedBytes, s.now())
		return err
	})
	switch {
	case isNotFound(err):
		return nil, errNotFound()
	case err != nil:
		return nil, fault.Wrap(fault.Unavailable, err, "could not delete the asset")
	}
	return &assetv1.DeleteAssetResponse{Asset: assetProto(a)}, nil
}
