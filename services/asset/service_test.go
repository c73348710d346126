package asset

import (
	"context"
	"log/slog"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/backplane/backplane/internal/config"
	"github.com/backplane/backplane/internal/service"
)

func configEnv(m map[string]string) *config.Env {
	return config.NewEnv(func(k string) string { return m[k] })
}

// The process starts the service from its Definition alone: the bucket opened (by
// default under the data dir), checked by readiness, closed on shutdown.
func TestDefinitionStartsTheService(t *testing.T) {
	t.Parallel()
	def := Definition()
	require.Equal(t, "asset", def.Name)
	require.ElementsMatch(t, []string{"auth", "subscription", "usage"}, def.Needs)
	require.True(t, def.Jobs)

	pool := testDatabase(t)
	dataDir := t.TempDir()
	start, err := def.LoadConfig(configEnv(nil))
	require.NoError(t, err)
	inst, err := start(t.Context(), service.Deps{Logger: slog.New(slog.DiscardHandler), DB: pool, DataDir: dataDir})
	require.NoError(t, err)
	srv := grpc.NewServer()
	inst.Register(srv)
	require.Contains(t, srv.GetServiceInfo(), "backplane.asset.v1.AssetService")
	require.NoError(t, inst.Ready(t.Context()))
	require.NotNil(t, inst.Jobs)
	require.DirExists(t, filepath.Join(dataDir, "assets"))
	require.NoError(t, inst.Stop(context.Background()))
	require.Error(t, inst.Ready(t.Context()), "a closed bucket is not ready")

	_, err = start(t.Context(), service.Deps{Logger: slog.New(slog.DiscardHandler)})
	require.Error(t, err, "no database")
}

// A bucket that cannot be opened or does not answer stops the start, naming the
// variable; an S3-compatible server given by URL opens.
func TestBucketURLs(t *testing.T) {
	t.Parallel()
	pool := testDatabase(t)
	startWith := func(rawURL string) error {
		start, err := Definition().LoadConfig(configEnv(map[string]string{envBlobURL: rawURL}))
		require.NoError(t, err)
		inst, err := start(t.Context(), service.Deps{Logger: slog.New(slog.DiscardHandler), DB: pool})
		if err == nil {
			require.NoError(t, inst.Stop(context.Background()))
		}
		return err
	}
	endpoint := s3Server(t)
	q := url.Values{"endpoint": {endpoint}, "use_path_style": {"true"}, "region": {"us-east-1"}, "anonymous": {"true"}}
	require.NoError(t, startWith("s3://assets?"+q.Encode()))
	require.NoError(t, startWith("file://"+filepath.ToSlash(t.TempDir())+"/nested/assets"))

	err := startWith("s3://no-such-bucket?" + q.Encode())
	require.ErrorContains(t, err, envBlobURL)
	require.ErrorContains(t, err, "does not answer")
	q.Set("bogus", "1")
	require.ErrorContains(t, startWith("s3://assets?"+q.Encode()), envBlobURL)
}

func TestBadSettingsNameTheirVariable(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		env  map[string]string
		want string
	}{
		"unknown scheme":    {map[string]string{envBlobURL: "ftp://bucket"}, envBlobURL},
		"no bucket":         {map[string]string{envBlobURL: "s3://"}, envBlobURL},
		"size not a number": {map[string]string{envMaxBytes: "100MB"}, envMaxBytes},
		"size past 5 GiB":   {map[string]string{envMaxBytes: "5368709121"}, envMaxBytes},
		"not a media type":  {map[string]string{envAllowedTypes: "png"}, envAllowedTypes},
		"signing key short": {map[string]string{envSigningKey: "short"}, envSigningKey},
		"redirect not bool": {map[string]string{envRedirect: "sometimes"}, envRedirect},
		"expiry too short":  {map[string]string{envRedirectTTL: "1s"}, envRedirectTTL},
		"expiry too long":   {map[string]string{envRedirectTTL: "1h"}, envRedirectTTL},
	} {
		_, err := LoadConfig(configEnv(tc.env))
		require.ErrorContains(t, err, tc.want, name)
	}
	c, err := LoadConfig(configEnv(map[string]string{envMaxBytes: "1048576", envAllowedTypes: "image/*, application/pdf"}))
	require.NoError(t, err)
	require.Equal(t, int64(1048576), c.MaxBytes)
	require.Equal(t, []string{"image/*", "application/pdf"}, c.AllowedTypes)
	d, err := LoadConfig(configEnv(nil))
	require.NoError(t, err)
	require.Equal(t, int64(100<<20), d.MaxBytes)
	require.Equal(t, defaultAllowedTypes, d.AllowedTypes)
	require.False(t, d.DownloadRedirect)
	require.Equal(t, time.Minute, d.DownloadRedirectExpiry)
	r, err := LoadConfig(configEnv(map[string]string{envRedirect: "true", envRedirectTTL: "5m"}))
	require.NoError(t, err)
	require.True(t, r.DownloadRedirect)
	require.Equal(t, 5*time.Minute, r.DownloadRedirectExpiry)
}
