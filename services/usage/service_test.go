package usage

import (
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/backplane/backplane/internal/config"
	"github.com/backplane/backplane/internal/service"
)

// The process starts the service from its Definition alone: its River schema migrated
// beside its own, its jobs working, its background work stopped on shutdown.
func TestDefinitionStartsTheService(t *testing.T) {
	t.Parallel()
	def := Definition()
	require.Equal(t, "usage", def.Name)
	require.True(t, def.Jobs)
	require.ElementsMatch(t, []string{"subscription", "notification"}, def.Needs)

	b := setup(t)
	start, err := def.LoadConfig(config.NewEnv(func(string) string { return "" }))
	require.NoError(t, err)
	inst, err := start(context.Background(), b.deps)
	require.NoError(t, err)
	require.NotNil(t, inst.Jobs)
	srv := grpc.NewServer()
	inst.Register(srv)
	require.Contains(t, srv.GetServiceInfo(), "backplane.usage.v1.UsageService")
	require.NoError(t, inst.Stop(context.Background()))

	_, err = start(context.Background(), service.Deps{Logger: slog.New(slog.DiscardHandler)})
	require.Error(t, err, "no database")
}

func TestBadSettingsNameTheirVariable(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		env  map[string]string
		want string
	}{
		"retention too short":   {map[string]string{envRetention: "1"}, envRetention},
		"retention not months":  {map[string]string{envRetention: "13mo"}, envRetention},
		"keys kept too briefly": {map[string]string{envKeyTTL: "1h"}, envKeyTTL},
		"report interval":       {map[string]string{envReportInterval: "10s"}, envReportInterval},
		"not a stripe key":      {map[string]string{envStripeKey: "pk_test_123"}, envStripeKey},
		"bad catalogue":         {map[string]string{"BACKPLANE_CATALOG_FILE": "/nonexistent.yaml"}, "BACKPLANE_CATALOG_FILE"},
	} {
		_, err := LoadConfig(config.NewEnv(func(k string) string { return tc.env[k] }))
		require.ErrorContains(t, err, tc.want, name)
	}
	c, err := LoadConfig(config.NewEnv(func(k string) string {
		return map[string]string{envRetention: "24", envKeyTTL: "72h", envReportInterval: "1h", envStripeKey: "sk_test_x", envStripeAPIBase: "http://127.0.0.1:12111/"}[k]
	}))
	require.NoError(t, err)
	require.Equal(t, 24, c.Retention)
	require.Equal(t, "http://127.0.0.1:12111", c.StripeAPIBase)
	require.True(t, c.billing())
	d := defaultConfig()
	require.Equal(t, 13, d.Retention)
	require.False(t, d.billing())
}
