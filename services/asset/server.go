package asset

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"gocloud.dev/blob"

	assetv1 "github.com/backplane/backplane/gen/backplane/asset/v1"
	subscriptionv1 "github.com/backplane/backplane/gen/backplane/subscription/v1"
	usagev1 "github.com/backplane/backplane/gen/backplane/usage/v1"
	"github.com/backplane/backplane/internal/jobs"
	"github.com/backplane/backplane/internal/service"
)

// Server implements assetv1.AssetServiceServer.
type Server struct {
	assetv1.UnimplementedAssetServiceServer

	cfg      Config
	log      *slog.Logger
	store    *store
	bucket   *blob.Bucket
	closeBkt bool // the server opened bucket, and closes it on Stop
	types    *typePolicy
	signer   *urlSigner
	// redirect is whether downloads that accept it are redirected to the bucket:
	// cfg.DownloadRedirect, on a bucket that can sign their URLs.
	redirect  bool
	publicURL string
	usage     usagev1.UsageServiceClient // nil: no quota (tests of other behaviour)
	// plans answers each owner's plan, whose max_upload_bytes replaces cfg.MaxBytes; nil:
	// cfg.MaxBytes for everyone (tests of other behaviour).
	plans subscriptionv1.SubscriptionServiceClient
	jobs  *jobs.Client
	now   func() time.Time
}

var _ assetv1.AssetServiceServer = (*Server)(nil)

// New builds the server from its configuration and the process's dependencies, opening
// the bucket BACKPLANE_BLOB_URL names (or the data dir's assets directory). A bucket that
// cannot be opened or does not answer fails New, naming the variable.
func New(ctx context.Context, cfg Config, deps service.Deps) (*Server, error) {
	return newServer(ctx, cfg, deps, wiring{})
}

// wiring is what New derives and tests replace. Zero fields take production values.
type wiring struct {
	// bucket is the bucket to use instead of opening cfg's; the caller closes it.
	bucket *blob.Bucket
	// now is the clock; time.Now when nil.
	now func() time.Time
	// jobPoll is how often idle workers look for jobs that became due; River's default
	// when zero.
	jobPoll time.Duration
}

func newServer(ctx context.Context, cfg Config, deps service.Deps, w wiring) (*Server, error) {
	if deps.Logger == nil || deps.DB == nil {
		return nil, errors.New("asset: Logger and DB are required")
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = defaultMaxBytes
	}
	if len(cfg.AllowedTypes) == 0 {
		cfg.AllowedTypes = defaultAllowedTypes
	}
	if w.now == nil {
		w.now = time.Now
	}
	log := deps.Logger.With("service", "asset")
	key := cfg.SigningKey
	if len(key) == 0 {
		key = []byte(rand.Text() + rand.Text())
		log.WarnContext(ctx, "download URLs are signed with a key of this replica's own: set BACKPLANE_ASSET_SIGNING_KEY so that they work on every replica and across restarts")
	}
	s := &Server{
		cfg:       cfg,
		log:       log,
		store:     newStore(deps.DB),
		bucket:    w.bucket,
		types:     newTypePolicy(cfg.AllowedTypes),
		signer:    &urlSigner{key: key},
		publicURL: strings.TrimRight(deps.PublicURL, "/"),
		now:       w.now,
	}
	if conn := deps.Peers["usage"]; conn != nil {
		s.usage = usagev1.NewUsageServiceClient(conn)
	}
	if conn := deps.Peers["subscription"]; conn != nil {
		s.plans = subscriptionv1.NewSubscriptionServiceClient(conn)
	}
	if s.bucket == nil {
		u, err := bucketURL(cfg, deps.DataDir)
		if err != nil {
			return nil, err
		}
		if s.bucket, err = openBucket(ctx, u); err != nil {
			return nil, fmt.Errorf("asset: %w", err)
		}
		s.closeBkt = true
	}
	if cfg.DownloadRedirect {
		if err := s.probeRedirect(ctx); err != nil {
			log.WarnContext(ctx, "downloads stream through the service: "+envRedirect+" is set but the bucket cannot sign download URLs", "error", err)
		} else {
			s.redirect = true
		}
	}
	var err error
	if s.jobs, err = jobs.New(deps.DB, s.jobsConfig(deps, w.jobPoll)); err != nil {
		return nil, errors.Join(err, s.Stop(ctx))
	}
	return s, nil
}

// Ready reports whether the bucket answers: the service's readiness check.
func (s *Server) Ready(ctx context.Context) error {
	if err := checkBucket(ctx, s.bucket); err != nil {
		return fmt.Errorf("the asset bucket: %w", err)
	}
	return nil
}

// Stop closes what New opened.
func (s *Server) Stop(context.Context) error {
	if s.closeBkt {
		return s.bucket.Close()
	}
	return nil
}
