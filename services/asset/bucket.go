package asset

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gocloud.dev/blob"
	// The drivers BACKPLANE_BLOB_URL may name: the bucket URL's scheme picks one.
	_ "gocloud.dev/blob/fileblob"
	_ "gocloud.dev/blob/gcsblob"
	_ "gocloud.dev/blob/memblob"
	_ "gocloud.dev/blob/s3blob"
	"gocloud.dev/gcerrors"

	"github.com/backplane/backplane/internal/telemetry"
)

// bucketURL is the bucket the service opens: cfg's BlobURL, or the assets directory
// under the process's data dir.
func bucketURL(cfg Config, dataDir string) (string, error) {
	if cfg.BlobURL != "" {
		return cfg.BlobURL, nil
	}
	if dataDir == "" {
		return "", errors.New("asset: BACKPLANE_BLOB_URL is unset and there is no data dir for its default")
	}
	dir, err := filepath.Abs(filepath.Join(dataDir, "assets"))
	if err != nil {
		return "", fmt.Errorf("asset: the data dir: %w", err)
	}
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(dir)}).String(), nil
}

// openBucket opens the bucket at rawURL and checks that it answers, so that a bad URL or
// an unreachable bucket stops the start with an error that says which. A file bucket's
// directory is created when missing.
func openBucket(ctx context.Context, rawURL string) (*blob.Bucket, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%s: not a URL", envBlobURL)
	}
	if u.Scheme == "file" {
		// Writes go through a temporary file beside the final one, so a rename completes
		// them within one file system.
		if err := os.MkdirAll(filepath.FromSlash(u.Path), 0o750); err != nil {
			return nil, fmt.Errorf("%s: create the directory %s: %w", envBlobURL, u.Path, err)
		}
		q := u.Query()
		if q.Get("no_tmp_dir") == "" {
			q.Set("no_tmp_dir", "true")
		}
		u.RawQuery = q.Encode()
	}
	bucket, err := blob.OpenBucket(ctx, u.String())
	if err != nil {
		return nil, fmt.Errorf("%s: open %s://%s: %w", envBlobURL, u.Scheme, u.Host, err)
	}
	if err := checkBucket(ctx, bucket); err != nil {
		return nil, errors.Join(fmt.Errorf("%s: %s://%s does not answer: %w", envBlobURL, u.Scheme, u.Host, err), bucket.Close())
	}
	return bucket, nil
}

// bucketCheckTimeout bounds one readiness check of the bucket.
const bucketCheckTimeout = 5 * time.Second

// checkBucket reports whether the bucket can be reached and read: it lists one key.
// An empty bucket answers too. It is housekeeping (start-up and readiness), so it is
// untraced: gocloud.dev traces through OpenTelemetry's global provider, which in a
// process hosting several pieces names the whole process, not the asset service.
func checkBucket(ctx context.Context, bucket *blob.Bucket) error {
	ctx, cancel := context.WithTimeout(telemetry.WithoutTracing(ctx), bucketCheckTimeout)
	defer cancel()
	_, _, err := bucket.ListPage(ctx, blob.FirstPageToken, 1, &blob.ListOptions{Prefix: objectPrefix})
	if err != nil {
		return fmt.Errorf("list: %s", bucketErrorText(err))
	}
	return nil
}

// bucketErrorText is a driver error short enough for a log line or /readyz, with its
// gocloud code first.
func bucketErrorText(err error) string {
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i > 0 {
		msg = msg[:i]
	}
	return gcerrors.Code(err).String() + ": " + msg
}

func isBlobNotFound(err error) bool { return gcerrors.Code(err) == gcerrors.NotFound }
