package notification

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	"github.com/backplane/backplane/internal/fault"
)

func TestSendWithTheSameIdempotencyKeyMakesOneNotification(t *testing.T) {
	t.Parallel()
	b := setup(t)
	req := func() *notificationv1.SendRequest {
		return &notificationv1.SendRequest{
			Recipient: &notificationv1.SendRequest_UserId{UserId: uuid.NewString()},
			Template:  "message", Data: map[string]string{"title": "Invoice paid", "body": "Thanks."},
			Category:       notificationv1.Category_CATEGORY_BILLING,
			Channels:       []notificationv1.Channel{notificationv1.Channel_CHANNEL_EMAIL, notificationv1.Channel_CHANNEL_IN_APP},
			IdempotencyKey: "invoice_paid:in_123",
		}
	}

	first, err := b.server.Send(context.Background(), req())
	require.NoError(t, err)
	require.False(t, first.GetDeduplicated())
	second, err := b.server.Send(context.Background(), req())
	require.NoError(t, err)
	require.True(t, second.GetDeduplicated())
	require.Equal(t, first.GetNotificationId(), second.GetNotificationId())

	var notifications, outbox int
	require.NoError(t, b.pool.QueryRow(context.Background(), "SELECT count(*) FROM notification").Scan(&notifications))
	require.NoError(t, b.pool.QueryRow(context.Background(), "SELECT count(*) FROM outbox").Scan(&outbox))
	require.Equal(t, 1, notifications)
	require.Equal(t, 2, outbox, "one row per channel")
}

func TestSendRefusesUnknownTemplatesAndMissingData(t *testing.T) {
	t.Parallel()
	b := setup(t)
	base := func() *notificationv1.SendRequest {
		return &notificationv1.SendRequest{
			Recipient: &notificationv1.SendRequest_Email{Email: "a@example.test"},
			Category:  notificationv1.Category_CATEGORY_SECURITY,
			Channels:  []notificationv1.Channel{notificationv1.Channel_CHANNEL_EMAIL}, IdempotencyKey: uuid.NewString(),
		}
	}

	req := base()
	req.Template = "no_such_template"
	_, err := b.server.Send(context.Background(), req)
	require.Equal(t, fault.InvalidArgument, fault.KindOf(err))

	req = base()
	req.Template = "reset_password" // needs data["token"]
	_, err = b.server.Send(context.Background(), req)
	require.Equal(t, fault.InvalidArgument, fault.KindOf(err))

	req = base()
	req.Template = "verify_email"
	req.Data = map[string]string{"token": "t"}
	req.Channels = append(req.Channels, notificationv1.Channel_CHANNEL_IN_APP)
	_, err = b.server.Send(context.Background(), req)
	require.Equal(t, fault.InvalidArgument, fault.KindOf(err), "an address has no inbox")
}

func TestTemplatesRenderLinksFromThePublicURL(t *testing.T) {
	t.Parallel()
	c, err := newCatalog(testPublicURL + "/")
	require.NoError(t, err)
	for name, data := range map[string]map[string]string{
		"verify_email":     {"token": "a&b"},
		"reset_password":   {"token": "a&b"},
		"password_changed": {},
		"new_sign_in":      {"ip_address": "192.0.2.1", "user_agent": "Firefox", "time": "2026-11-28T05:00:00Z"},
		"message":          {"title": "Hi <there>", "body": "<b>bold</b>", "path": "/billing"},
	} {
		r, err := c.render(name, templateData{Data: data, UnsubscribeURL: testPublicURL + "/v1/unsubscribe/x"})
		require.NoError(t, err, name)
		require.NotEmpty(t, r.subject, name)
		require.NotContains(t, r.subject, "\n", name)
		require.Contains(t, r.text, testPublicURL, name)
		require.Contains(t, r.html, testPublicURL, name)
	}

	r, err := c.render("verify_email", templateData{Data: map[string]string{"token": "a&b"}})
	require.NoError(t, err)
	require.Contains(t, r.text, testPublicURL+"/verify-email?token=a%26b")
	require.Contains(t, r.html, `href="`+testPublicURL+`/verify-email?token=a%26b"`)

	r, err = c.render("message", templateData{Data: map[string]string{"title": "T", "body": "<script>x</script>"}})
	require.NoError(t, err)
	require.NotContains(t, r.html, "<script>", "html/template escapes the sender's values")
	require.Contains(t, r.text, "<script>x</script>", "the text part is plain text")

	// What the auth service sends: a link it built under the same public URL.
	link := testPublicURL + "/reset-password?token=secret"
	r, err = c.render("reset_password", templateData{Data: map[string]string{"display_name": "Ada", "link": link}})
	require.NoError(t, err)
	require.Contains(t, r.text, "Hi Ada,")
	require.Contains(t, r.text, link)
	require.Contains(t, r.html, `href="`+testPublicURL+`/reset-password?token=secret"`)

	// A link elsewhere is refused, and the error does not repeat its token.
	_, err = c.render("verify_email", templateData{Data: map[string]string{"link": "https://evil.example/verify?token=secret"}})
	require.Error(t, err)
	require.NotContains(t, err.Error(), "secret")

	_, err = c.render("nope", templateData{})
	require.ErrorIs(t, err, errUnknownTemplate)
}
