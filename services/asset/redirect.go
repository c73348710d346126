package asset

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"cloud.google.com/go/storage"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"gocloud.dev/blob"

	"github.com/backplane/backplane/internal/disposition"
	"github.com/backplane/backplane/services/asset/dbsqlc"
)

// A download the REST door may redirect (DownloadRedirect) is answered with a signed GET
// URL of the asset's object instead of its bytes. The bucket's answer to that URL must
// say what the door's would, so the URL carries the headers to force onto it (S3's and
// GCS's response-* parameters, covered by the signature): the asset's content type, the
// door's Content-Disposition (an attachment for active content), and private caching.
// What no parameter can force stays the door's alone: the sandboxing CSP and nosniff.
// Active content is still never shown from our origin: the bucket's is another, and the
// file an attachment.

// redirectCacheControl keeps shared caches from storing a user's file.
const redirectCacheControl = "private, no-cache"

// errNoForcedHeaders is a bucket whose signed URLs cannot carry the response's headers:
// its downloads stream.
var errNoForcedHeaders = errors.New("the bucket's signed URLs cannot set the response's headers")

// redirectURL is a signed URL of a's object, good for cfg's DownloadRedirectExpiry, whose
// answer carries the asset's headers. A bucket that cannot sign URLs (a directory, memory)
// or cannot force the headers answers an error.
func (s *Server) redirectURL(ctx context.Context, a dbsqlc.Asset) (string, error) {
	return s.bucket.SignedURL(ctx, *a.ObjectKey, &blob.SignedURLOptions{
		Expiry:     s.cfg.DownloadRedirectExpiry,
		Method:     http.MethodGet,
		BeforeSign: forceHeaders(a.ContentType, disposition.Of(a.Filename, a.ContentType)),
	})
}

// forceHeaders sets the response's headers on the request to sign, through the driver's
// own type: s3blob's GetObjectInput, gcsblob's SignedURLOptions (V4, whose signature
// covers the query).
func forceHeaders(contentType, contentDisposition string) func(as func(any) bool) error {
	return func(as func(any) bool) error {
		var in *s3.GetObjectInput
		if as(&in) {
			in.ResponseContentType = aws.String(contentType)
			in.ResponseContentDisposition = aws.String(contentDisposition)
			in.ResponseCacheControl = aws.String(redirectCacheControl)
			return nil
		}
		var opts *storage.SignedURLOptions
		if as(&opts) {
			opts.Scheme = storage.SigningSchemeV4
			if opts.QueryParameters == nil {
				opts.QueryParameters = url.Values{}
			}
			opts.QueryParameters.Set("response-content-type", contentType)
			opts.QueryParameters.Set("response-content-disposition", contentDisposition)
			opts.QueryParameters.Set("response-cache-control", redirectCacheControl)
			return nil
		}
		return errNoForcedHeaders
	}
}

// probeRedirect reports whether the bucket can sign the URLs of redirected downloads:
// it signs one for an object that need not exist (signing is local to the process for
// S3; GCS may ask its signer).
func (s *Server) probeRedirect(ctx context.Context) error {
	key := objectPrefix + "probe"
	_, err := s.redirectURL(ctx, dbsqlc.Asset{ObjectKey: &key, ContentType: "application/octet-stream", Filename: "probe"})
	return err
}
