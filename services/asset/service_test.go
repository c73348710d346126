package asset_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	assetv1 "github.com/backplane/backplane/gen/backplane/asset/v1"
	"github.com/backplane/backplane/internal/config"
	"github.com/backplane/backplane/internal/service"
	"github.com/backplane/backplane/services/asset"
)

func TestDefinitionStartsAServiceThatAnswersUnimplemented(t *testing.T) {
	t.Parallel()
	def := asset.Definition()
	require.Equal(t, "asset", def.Name)
	start, err := def.LoadConfig(config.NewEnv(func(string) string { return "" }))
	require.NoError(t, err)
	inst, err := start(context.Background(), service.Deps{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	srv := grpc.NewServer()
	inst.Register(srv)
	require.Contains(t, srv.GetServiceInfo(), "backplane.asset.v1.AssetService")

	s, err := asset.New(context.Background(), asset.Config{}, service.Deps{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	_, err = s.GetAsset(context.Background(), &assetv1.GetAssetRequest{})
	require.Equal(t, codes.Unimplemented, status.Code(err), "built with its issue")
}
