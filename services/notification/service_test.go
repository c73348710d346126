package notification

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	"github.com/backplane/backplane/internal/config"
	"github.com/backplane/backplane/internal/grpctest"
	"github.com/backplane/backplane/internal/redistest"
	"github.com/backplane/backplane/internal/service"
)

// startService runs the service as the mesh does: configuration read from env by its
// Definition, Register on a server with the production chain and real authentication,
// and its workers running. It returns the started instance and the bundle whose
// authentication and clients reach it.
func startService(t *testing.T, env map[string]string) (*service.Instance, *bundle) {
	t.Helper()
	deps := service.Deps{
		Logger:    slog.New(slog.DiscardHandler),
		DB:        testPool(t),
		Redis:     redistest.Client(t),
		PublicURL: testPublicURL,
		DataDir:   t.TempDir(),
	}
	start, err := Definition().LoadConfig(config.NewEnv(func(k string) string { return env[k] }))
	require.NoError(t, err)
	inst, err := start(context.Background(), deps)
	require.NoError(t, err)
	if inst.Stop != nil {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			require.NoError(t, inst.Stop(ctx))
		})
	}
	b := &bundle{pool: deps.DB, deps: deps, authn: newTestAuthn(t, deps.Redis)}
	s := grpctest.Start(t, inst.Register, grpctest.WithAuthenticator(b.authn.Interceptor))
	b.api = api{
		user:     notificationv1.NewNotificationServiceClient(s.Conn),
		internal: notificationv1.NewNotificationServiceClient(s.Dial(t, grpc.WithPerRPCCredentials(b.authn.Services.PerRPCCredentials("auth")))),
	}
	return inst, b
}

func TestServiceOverGRPC(t *testing.T) {
	t.Parallel()
	sg := newFakeSendgrid(t)
	inst, b := startService(t, map[string]string{
		"BACKPLANE_SENDGRID_API_KEY":     "SG.test-key",
		"BACKPLANE_SENDGRID_BASE_URL":    sg.URL,
		"BACKPLANE_EMAIL_FROM":           "Backplane <no-reply@example.test>",
		"BACKPLANE_NOTIFY_WORKERS":       "2",
		"BACKPLANE_NOTIFY_POLL_INTERVAL": "50ms",
	})
	ctx := context.Background()
	require.NotNil(t, inst.Jobs, "the process shows the service's queues in the River UI")
	require.Equal(t, "notification_river", inst.Jobs.Schema())

	send := &notificationv1.SendRequest{
		Recipient: &notificationv1.SendRequest_Email{Email: "grpc@example.test"},
		Template:  "new_sign_in", Data: map[string]string{"ip_address": "192.0.2.7"},
		Category: notificationv1.Category_CATEGORY_SECURITY,
		Channels: []notificationv1.Channel{notificationv1.Channel_CHANNEL_EMAIL}, IdempotencyKey: "sign-in:1",
	}
	_, err := b.api.user.Send(ctx, send)
	require.Equal(t, codes.Unauthenticated, status.Code(err), "Send is INTERNAL: only a service may call it")
	_, err = b.api.user.Send(b.as(t, uuid.New()), send)
	require.Equal(t, codes.PermissionDenied, status.Code(err), "not even a signed-in user")

	resp, err := b.api.internal.Send(ctx, send)
	require.NoError(t, err)
	id := uuid.MustParse(resp.GetNotificationId())
	require.Eventually(t, func() bool { return len(sg.sentFor(id)) == 1 }, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, "New sign-in to your account", sg.sentFor(id)[0].Subject)

	// The shared interceptors validate the request against the proto's rules.
	_, err = b.api.internal.Send(ctx, &notificationv1.SendRequest{
		Recipient: &notificationv1.SendRequest_Email{Email: "grpc@example.test"},
		Template:  "Not A Name", Category: notificationv1.Category_CATEGORY_SECURITY,
		Channels: []notificationv1.Channel{notificationv1.Channel_CHANNEL_EMAIL}, IdempotencyKey: "k",
	})
	require.Equal(t, codes.InvalidArgument, status.Code(err))

	_, err = b.api.user.ListNotifications(ctx, &notificationv1.ListNotificationsRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err))

	userCtx := b.as(t, uuid.New())
	_, err = b.api.user.MarkNotificationRead(userCtx, &notificationv1.MarkNotificationReadRequest{NotificationId: id.String()})
	require.Equal(t, codes.NotFound, status.Code(err), "an email to an address is in nobody's inbox")

	_, err = b.api.user.UpdateNotificationPreferences(userCtx, &notificationv1.UpdateNotificationPreferencesRequest{
		Preferences: &notificationv1.NotificationPreferences{Preferences: []*notificationv1.NotificationPreference{
			pref(notificationv1.Category_CATEGORY_SECURITY, notificationv1.Channel_CHANNEL_EMAIL, false),
		}},
	})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
}

// With no workers the service only inserts jobs, for other replicas to work: it starts
// no River client, so there is nothing to stop, and its emails wait.
func TestServiceWithoutWorkersOnlyInserts(t *testing.T) {
	t.Parallel()
	inst, b := startService(t, map[string]string{"BACKPLANE_NOTIFY_WORKERS": "0"})
	require.Nil(t, inst.Stop)
	require.NotNil(t, inst.Jobs)

	resp, err := b.api.internal.Send(context.Background(), &notificationv1.SendRequest{
		Recipient: &notificationv1.SendRequest_Email{Email: "later@example.test"},
		Template:  "message", Data: map[string]string{"title": "t", "body": "b"},
		Category: notificationv1.Category_CATEGORY_PRODUCT,
		Channels: []notificationv1.Channel{notificationv1.Channel_CHANNEL_EMAIL}, IdempotencyKey: uuid.NewString(),
	})
	require.NoError(t, err)
	time.Sleep(300 * time.Millisecond)
	waiting, err := inst.Jobs.River().JobList(context.Background(), river.NewJobListParams().States(rivertype.JobStateAvailable))
	require.NoError(t, err)
	require.Len(t, waiting.Jobs, 1)
	var args emailArgs
	require.NoError(t, json.Unmarshal(waiting.Jobs[0].EncodedArgs, &args))
	require.Equal(t, resp.GetNotificationId(), args.NotificationID.String())
}

func TestDefinitionRefusesBadSettingsBeforeStarting(t *testing.T) {
	t.Parallel()
	_, err := Definition().LoadConfig(config.NewEnv(func(k string) string {
		if k == "BACKPLANE_NOTIFY_MAX_ATTEMPTS" {
			return "lots"
		}
		return ""
	}))
	require.ErrorContains(t, err, "BACKPLANE_NOTIFY_MAX_ATTEMPTS")
}
