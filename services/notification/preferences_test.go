package notification

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	"github.com/backplane/backplane/internal/validation"
)

func pref(cat notificationv1.Category, ch notificationv1.Channel, enabled bool) *notificationv1.NotificationPreference {
	return &notificationv1.NotificationPreference{Category: cat, Channel: ch, Enabled: enabled}
}

func TestPreferencesDefaultOnAndSecurityLocked(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := b.as(t, uuid.New())

	resp, err := b.api.user.GetNotificationPreferences(ctx, &notificationv1.GetNotificationPreferencesRequest{})
	require.NoError(t, err)
	prefs := resp.GetPreferences().GetPreferences()
	require.Len(t, prefs, 10)
	for _, p := range prefs {
		require.True(t, p.GetEnabled())
		require.Equal(t, p.GetCategory() == notificationv1.Category_CATEGORY_SECURITY, p.GetLocked())
	}
	require.Nil(t, resp.GetPreferences().GetUpdateTime())

	_, err = b.api.user.UpdateNotificationPreferences(ctx, &notificationv1.UpdateNotificationPreferencesRequest{
		Preferences: &notificationv1.NotificationPreferences{Preferences: []*notificationv1.NotificationPreference{
			pref(notificationv1.Category_CATEGORY_SECURITY, notificationv1.Channel_CHANNEL_EMAIL, false),
		}},
	})
	require.Equal(t, codes.InvalidArgument, status.Code(err))

	_, err = b.api.user.GetNotificationPreferences(context.Background(), &notificationv1.GetNotificationPreferencesRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err))
}

func TestPreferencesSwitchChannelsOff(t *testing.T) {
	t.Parallel()
	b := setup(t)
	startWorkers(t, b.server, 1)
	userID := uuid.New()
	ctx := b.as(t, userID)

	resp, err := b.api.user.UpdateNotificationPreferences(ctx, &notificationv1.UpdateNotificationPreferencesRequest{
		Preferences: &notificationv1.NotificationPreferences{Preferences: []*notificationv1.NotificationPreference{
			pref(notificationv1.Category_CATEGORY_BILLING, notificationv1.Channel_CHANNEL_EMAIL, false),
		}},
	})
	require.NoError(t, err)
	require.NotNil(t, resp.GetPreferences().GetUpdateTime())
	for _, p := range resp.GetPreferences().GetPreferences() {
		off := p.GetCategory() == notificationv1.Category_CATEGORY_BILLING && p.GetChannel() == notificationv1.Channel_CHANNEL_EMAIL
		require.Equal(t, !off, p.GetEnabled(), "%s %s", p.GetCategory(), p.GetChannel())
	}

	both := []notificationv1.Channel{notificationv1.Channel_CHANNEL_EMAIL, notificationv1.Channel_CHANNEL_IN_APP}
	billing := b.send(t, &notificationv1.SendRequest{
		Recipient: &notificationv1.SendRequest_UserId{UserId: userID.String()},
		Category:  notificationv1.Category_CATEGORY_BILLING, Channels: both,
	})
	security := b.send(t, &notificationv1.SendRequest{
		Recipient: &notificationv1.SendRequest_UserId{UserId: userID.String()},
		Template:  "password_changed", Category: notificationv1.Category_CATEGORY_SECURITY, Channels: both,
	})

	require.Equal(t, statusSuppressed, b.email(t, billing).Status)
	b.waitForStatus(t, security, statusSent)
	require.Empty(t, b.sendgrid.sentFor(billing))

	list, err := b.api.user.ListNotifications(ctx, &notificationv1.ListNotificationsRequest{})
	require.NoError(t, err)
	require.Len(t, list.GetNotifications(), 2, "in-app stays on for billing")
}

func TestSuppressedAddressGetsOnlySecurityEmail(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.NoError(t, b.server.store.suppress(context.Background(), "Bounced@Example.test", "", "hard bounce"))
	startWorkers(t, b.server, 1)

	product := b.send(t, &notificationv1.SendRequest{
		Recipient: &notificationv1.SendRequest_Email{Email: "bounced@example.test"}, Category: notificationv1.Category_CATEGORY_PRODUCT,
	})
	security := b.send(t, &notificationv1.SendRequest{
		Recipient: &notificationv1.SendRequest_Email{Email: "bounced@example.test"},
		Template:  "password_changed", Category: notificationv1.Category_CATEGORY_SECURITY,
	})

	b.waitForStatus(t, product, statusSuppressed)
	b.waitForStatus(t, security, statusSent)
	require.Empty(t, b.sendgrid.sentFor(product))
}

func TestUnsubscribeWithTheLinkFromAnEmail(t *testing.T) {
	t.Parallel()
	b := setup(t)
	startWorkers(t, b.server, 1)
	userID := uuid.New()

	id := b.send(t, &notificationv1.SendRequest{
		Recipient: &notificationv1.SendRequest_UserId{UserId: userID.String()}, Category: notificationv1.Category_CATEGORY_USAGE,
	})
	b.waitForStatus(t, id, statusSent)
	header := b.sendgrid.sentFor(id)[0].Headers["List-Unsubscribe"]
	token := strings.TrimSuffix(header[strings.LastIndex(header, "/")+1:], ">")

	// A tampered token is refused and changes nothing.
	tampered := []byte(token)
	tampered[3] ^= 1
	_, err := b.api.user.Unsubscribe(context.Background(), &notificationv1.UnsubscribeRequest{Token: string(tampered)})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	_, err = b.api.user.Unsubscribe(context.Background(), &notificationv1.UnsubscribeRequest{Token: "garbage"})
	require.Equal(t, codes.InvalidArgument, status.Code(err))

	resp, err := b.api.user.Unsubscribe(context.Background(), &notificationv1.UnsubscribeRequest{Token: token})
	require.NoError(t, err)
	require.Equal(t, notificationv1.Category_CATEGORY_USAGE, resp.GetPreference().GetCategory())
	require.False(t, resp.GetPreference().GetEnabled())

	prefs, err := b.api.user.GetNotificationPreferences(b.as(t, userID), &notificationv1.GetNotificationPreferencesRequest{})
	require.NoError(t, err)
	for _, p := range prefs.GetPreferences().GetPreferences() {
		off := p.GetCategory() == notificationv1.Category_CATEGORY_USAGE && p.GetChannel() == notificationv1.Channel_CHANNEL_EMAIL
		require.Equal(t, !off, p.GetEnabled())
	}
}

func TestUnsubscribeAnAddressWithoutAnAccount(t *testing.T) {
	t.Parallel()
	b := setup(t)
	token := b.server.links.signer.sign(unsubscribeClaim{Category: "product", Email: "invitee@example.test"})

	_, err := b.api.user.Unsubscribe(context.Background(), &notificationv1.UnsubscribeRequest{Token: token})
	require.NoError(t, err)

	product, err := b.server.store.suppressed(context.Background(), "invitee@example.test", "product")
	require.NoError(t, err)
	require.True(t, product)
	billing, err := b.server.store.suppressed(context.Background(), "invitee@example.test", "billing")
	require.NoError(t, err)
	require.False(t, billing, "only the category unsubscribed from")

	security := b.server.links.signer.sign(unsubscribeClaim{Category: "security", Email: "invitee@example.test"})
	_, err = b.api.user.Unsubscribe(context.Background(), &notificationv1.UnsubscribeRequest{Token: security})
	require.Equal(t, codes.InvalidArgument, status.Code(err))

	otherKey := tokenSigner{key: []byte("another key, of another deployment!!")}
	_, err = b.api.user.Unsubscribe(context.Background(), &notificationv1.UnsubscribeRequest{
		Token: otherKey.sign(unsubscribeClaim{Category: "product", Email: "invitee@example.test"}),
	})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
}

func TestUnsubscribeTokensFitTheContract(t *testing.T) {
	t.Parallel()
	v, err := validation.New()
	require.NoError(t, err)
	signer := tokenSigner{key: []byte("a test signing key of at least 32 bytes")}
	longest := strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61)
	require.Len(t, longest, 254)
	userID := uuid.New()
	for _, c := range []unsubscribeClaim{{Category: "product", Email: longest}, {Category: "billing", UserID: &userID}} {
		token := signer.sign(c)
		require.NoError(t, v.Check(&notificationv1.UnsubscribeRequest{Token: token}))
		got, err := signer.verify(token)
		require.NoError(t, err)
		require.Equal(t, c, got)
	}
}
