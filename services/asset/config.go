package asset

import (
	"mime"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/backplane/backplane/internal/config"
)

// Config holds the asset service's settings, each read from one environment variable
// named next to its field.
type Config struct {
	// BlobURL is the bucket that holds the files (BACKPLANE_BLOB_URL): file:///dir,
	// s3://bucket?region=…&endpoint=… (S3, R2, MinIO), gs://bucket, or mem:// (lost at
	// exit). Empty means file://$BACKPLANE_DATA_DIR/assets, for development.
	BlobURL string
	// MaxBytes is the largest file a user may upload (BACKPLANE_ASSET_MAX_BYTES, default
	// 100 MiB, at most 5 GiB).
	MaxBytes int64
	// AllowedTypes are the media types files may be declared with
	// (BACKPLANE_ASSET_ALLOWED_TYPES, comma-separated; "image/*" allows a whole family).
	// The default is defaultAllowedTypes.
	AllowedTypes []string
	// SigningKey signs download URLs (BACKPLANE_ASSET_SIGNING_KEY, at least 32 bytes).
	// Unset, each replica draws its own at start: URLs then fail on other replicas and
	// after a restart.
	SigningKey []byte
	// DownloadRedirect answers the REST door's downloads with a redirect to a signed URL
	// of the bucket's object, so that the bucket serves the bytes, rather than streaming
	// them through the service and the edge (BACKPLANE_ASSET_DOWNLOAD_REDIRECT, default
	// off). It is off by default because clients must then reach the bucket's own origin
	// (an S3 endpoint, not the edge), which an internal MinIO, a private network or a
	// client's firewall may not allow; and because a URL handed out stays good until it
	// expires, even if the asset is deleted meanwhile. Only buckets that can sign URLs
	// and force a response's headers redirect (S3, R2, MinIO, GCS with a signer); on any
	// other, downloads keep streaming.
	DownloadRedirect bool
	// DownloadRedirectExpiry is how long a redirect's URL works
	// (BACKPLANE_ASSET_DOWNLOAD_REDIRECT_EXPIRY, default 1m, 10s to 15m). A download
	// that started in time runs to its end; the URL is only for following the redirect.
	DownloadRedirectExpiry time.Duration
}

// Variables read by LoadConfig.
const (
	envBlobURL      = "BACKPLANE_BLOB_URL"
	envMaxBytes     = "BACKPLANE_ASSET_MAX_BYTES"
	envAllowedTypes = "BACKPLANE_ASSET_ALLOWED_TYPES"
	envSigningKey   = "BACKPLANE_ASSET_SIGNING_KEY"
	envRedirect     = "BACKPLANE_ASSET_DOWNLOAD_REDIRECT"
	envRedirectTTL  = "BACKPLANE_ASSET_DOWNLOAD_REDIRECT_EXPIRY"
)

// Defaults and bounds of the settings.
const (
	defaultMaxBytes = 100 << 20
	// maxMaxBytes is the contract's ceiling on a file's size.
	maxMaxBytes   = 5 << 30
	minSigningKey = 32

	defaultRedirectTTL = time.Minute
	minRedirectTTL     = 10 * time.Second
	maxRedirectTTL     = 15 * time.Minute
)

// defaultAllowedTypes are the media types allowed when BACKPLANE_ASSET_ALLOWED_TYPES is
// unset: pictures, documents, archives and plain data. Active content (HTML, SVG, XML)
// is left out; allowed, it is still only ever served as an attachment.
var defaultAllowedTypes = []string{
	"image/png", "image/jpeg", "image/gif", "image/webp", "image/avif",
	"application/pdf", "application/zip", "application/gzip", "application/json",
	"application/octet-stream", "text/plain", "text/csv", "text/markdown",
	"audio/mpeg", "audio/ogg", "audio/wav", "video/mp4", "video/webm",
}

// blobSchemes are the bucket URL schemes the binary links drivers for.
var blobSchemes = []string{"file", "s3", "gs", "mem"}

// LoadConfig reads the settings through env, with the rest of the process's
// configuration and before anything is opened. Every bad variable is reported, each
// error naming it.
func LoadConfig(env *config.Env) (Config, error) {
	c := Config{
		BlobURL:      env.String(envBlobURL, ""),
		MaxBytes:     env.Size(envMaxBytes, defaultMaxBytes),
		AllowedTypes: env.List(envAllowedTypes),
		SigningKey:   env.Secret(envSigningKey, minSigningKey),

		DownloadRedirect:       env.Bool(envRedirect, false),
		DownloadRedirectExpiry: env.Duration(envRedirectTTL, defaultRedirectTTL),
	}
	if len(c.AllowedTypes) == 0 {
		c.AllowedTypes = defaultAllowedTypes
	}
	c.validate(env)
	return c, env.Err()
}

// validate records on env every setting out of its range.
func (c Config) validate(env *config.Env) {
	if c.BlobURL != "" {
		u, err := url.Parse(c.BlobURL)
		switch {
		case err != nil:
			env.Invalid(envBlobURL, "want a bucket URL such as s3://bucket?region=us-east-1 or file:///var/lib/backplane/assets")
		case !slices.Contains(blobSchemes, u.Scheme):
			env.Invalid(envBlobURL, "want a bucket URL with scheme file, s3, gs or mem")
		case u.Scheme != "file" && u.Scheme != "mem" && u.Host == "":
			env.Invalid(envBlobURL, "want the bucket's name, such as s3://bucket")
		case u.Scheme == "file" && u.Path == "":
			env.Invalid(envBlobURL, "want a directory, such as file:///var/lib/backplane/assets")
		}
	}
	if c.MaxBytes > maxMaxBytes {
		env.Invalid(envMaxBytes, "want at most 5368709120 (5 GiB)")
	}
	if c.DownloadRedirectExpiry < minRedirectTTL || c.DownloadRedirectExpiry > maxRedirectTTL {
		env.Invalid(envRedirectTTL, "want a duration from 10s to 15m")
	}
	for _, t := range c.AllowedTypes {
		if _, _, err := mime.ParseMediaType(strings.Replace(t, "/*", "/x", 1)); err != nil || !strings.Contains(t, "/") {
			env.Invalid(envAllowedTypes, "want media types such as image/png or image/*, comma-separated")
			break
		}
	}
}
