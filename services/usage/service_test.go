package usage_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	usagev1 "github.com/backplane/backplane/gen/backplane/usage/v1"
	"github.com/backplane/backplane/internal/config"
	"github.com/backplane/backplane/internal/service"
	"github.com/backplane/backplane/services/usage"
)

func TestDefinitionStartsAServiceThatAnswersUnimplemented(t *testing.T) {
	t.Parallel()
	def := usage.Definition()
	require.Equal(t, "usage", def.Name)
	start, err := def.LoadConfig(config.NewEnv(func(string) string { return "" }))
	require.NoError(t, err)
	inst, err := start(context.Background(), service.Deps{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	srv := grpc.NewServer()
	inst.Register(srv)
	require.Contains(t, srv.GetServiceInfo(), "backplane.usage.v1.UsageService")

	s, err := usage.New(context.Background(), usage.Config{}, service.Deps{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	_, err = s.ListMeters(context.Background(), &usagev1.ListMetersRequest{})
	require.Equal(t, codes.Unimplemented, status.Code(err), "built with its issue")
}
