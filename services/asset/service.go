// Package asset is user files: uploads over REST and gRPC streams, downloads, and their
// metadata, on any bucket gocloud.dev/blob opens (a directory, S3, R2, MinIO, GCS).
//
// How it holds together:
//
//   - An asset is a row (queries/assets.sql) and, once READY, one object in the bucket.
//     Declaring a file (CreateAsset, or the first message of UploadAsset) reserves its
//     size against the owner's storage quota through the usage service's ConsumeQuota
//     on storage_bytes, under a lock on the owner's storage level row, so that
//     concurrent declarations cannot together pass the quota (assets.go, quota.go).
//   - Bytes stream through one path whichever door they came by (upload.go): hashed,
//     counted against the size limit (the owner's plan's max_upload_bytes, asked of the
//     subscription service, else BACKPLANE_ASSET_MAX_BYTES: uploadlimit.go) and the
//     declared size, and sniffed, on their way into a key of the attempt's own. The
//     row turns READY, naming that key, only once the object is complete; any failure
//     aborts the write.
//   - Downloads stream from the bucket (download.go), to the owner or to the holder of a
//     signed URL from GetAsset (signing.go). The REST door (gateway/assets.go) adds
//     Range, ETag and a safe Content-Disposition. With BACKPLANE_ASSET_DOWNLOAD_REDIRECT
//     a download the door makes is answered with a signed URL of the bucket's object
//     instead, whose answer carries the same headers, and the door redirects to it
//     (redirect.go).
//   - River jobs (jobs.go) erase deleted assets' bytes, expire pending assets after a
//     day, and erase orphaned objects.
//
// Files, as in every service (services/README.md): service.go describes the service;
// config.go reads its settings; server.go builds the Server; bucket.go opens the
// bucket; assets.go, upload.go and download.go are the RPCs; content.go decides types;
// convert.go turns rows into protos; store.go is the storage boundary over dbsqlc.
package asset

import (
	"context"
	"embed"
	"errors"
	"io/fs"

	"google.golang.org/grpc"

	assetv1 "github.com/backplane/backplane/gen/backplane/asset/v1"
	"github.com/backplane/backplane/internal/service"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations holds the NNNN_name.up.sql / .down.sql files at its root, as the migrator
// expects.
func migrations() fs.FS {
	// fs.Sub fails only for an invalid path name, and this one is a valid constant.
	sub, _ := fs.Sub(migrationFiles, "migrations")
	return sub
}

// Definition describes the asset service to the process that runs it. It counts stored
// bytes against each owner's plan through the usage service, and asks the subscription
// service for the largest file each owner's plan allows.
func Definition() service.Definition {
	return service.Define(service.Spec[Config]{
		Name:       "asset",
		Needs:      []string{"auth", "subscription", "usage"},
		Migrations: migrations(),
		Jobs:       true,
		APIs: []service.API{
			service.PublicAPI(assetv1.File_backplane_asset_v1_asset_proto.Services().ByName("AssetService"),
				assetv1.NewAssetServiceClient, assetv1.RegisterAssetServiceHandlerClient),
		},
		LoadConfig: LoadConfig,
		Start: func(ctx context.Context, cfg Config, deps service.Deps) (*service.Instance, error) {
			srv, err := New(ctx, cfg, deps)
			if err != nil {
				return nil, err
			}
			if err := srv.jobs.Start(ctx); err != nil {
				return nil, errors.Join(err, srv.Stop(ctx))
			}
			return &service.Instance{
				Register: func(reg grpc.ServiceRegistrar) { assetv1.RegisterAssetServiceServer(reg, srv) },
				Ready:    srv.Ready,
				Stop: func(ctx context.Context) error {
					return errors.Join(srv.jobs.Stop(ctx), srv.Stop(ctx))
				},
				Jobs: srv.jobs,
			}, nil
		},
	})
}
