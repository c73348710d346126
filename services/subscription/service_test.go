package subscription_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	subscriptionv1 "github.com/backplane/backplane/gen/backplane/subscription/v1"
	"github.com/backplane/backplane/internal/config"
	"github.com/backplane/backplane/internal/service"
	"github.com/backplane/backplane/services/subscription"
)

func TestDefinitionStartsAServiceThatAnswersUnimplemented(t *testing.T) {
	t.Parallel()
	def := subscription.Definition()
	require.Equal(t, "subscription", def.Name)
	start, err := def.LoadConfig(config.NewEnv(func(string) string { return "" }))
	require.NoError(t, err)
	inst, err := start(context.Background(), service.Deps{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	srv := grpc.NewServer()
	inst.Register(srv)
	require.Contains(t, srv.GetServiceInfo(), "backplane.subscription.v1.SubscriptionService")

	s, err := subscription.New(context.Background(), subscription.Config{}, service.Deps{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	_, err = s.ListPlans(context.Background(), &subscriptionv1.ListPlansRequest{})
	require.Equal(t, codes.Unimplemented, status.Code(err), "built with its issue")
}
