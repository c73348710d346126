package notification

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
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

	first, err := b.api.internal.Send(context.Background(), req())
	require.NoError(t, err)
	require.False(t, first.GetDeduplicated())
	second, err := b.api.internal.Send(context.Background(), req())
	require.NoError(t, err)
	require.True(t, second.GetDeduplicated())
	require.Equal(t, first.GetNotificationId(), second.GetNotificationId())

	var notifications, deliveries int
	require.NoError(t, b.pool.QueryRow(context.Background(), "SELECT count(*) FROM notification").Scan(&notifications))
	require.NoError(t, b.pool.QueryRow(context.Background(), "SELECT count(*) FROM delivery").Scan(&deliveries))
	require.Equal(t, 1, notifications)
	require.Equal(t, 2, deliveries, "one row per channel")
	emailJobs, err := b.server.jobs.River().JobList(context.Background(), river.NewJobListParams().Kinds(emailArgs{}.Kind()))
	require.NoError(t, err)
	require.Len(t, emailJobs.Jobs, 1, "one job, for the email")
}

// However often an email's job is inserted, there is one: a unique job, keyed by the
// notification, so no way in (a retried Send, the upgrade) can enqueue a second.
func TestAnEmailHasOneJobHoweverOftenItIsInserted(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.send(t, &notificationv1.SendRequest{Recipient: &notificationv1.SendRequest_Email{Email: "once@example.test"}})

	again, err := b.server.jobs.Insert(context.Background(), emailArgs{NotificationID: id}, nil)
	require.NoError(t, err)
	require.True(t, again.UniqueSkippedAsDuplicate)
	other, err := b.server.jobs.Insert(context.Background(), emailArgs{NotificationID: id, PriorAttempts: 3}, nil)
	require.NoError(t, err)
	require.True(t, other.UniqueSkippedAsDuplicate, "the notification alone names the job")
	require.Equal(t, again.Job.ID, other.Job.ID)
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
	_, err := b.api.internal.Send(context.Background(), req)
	require.Equal(t, codes.InvalidArgument, status.Code(err))

	req = base()
	req.Template = "reset_password" // needs data["token"]
	_, err = b.api.internal.Send(context.Background(), req)
	require.Equal(t, codes.InvalidArgument, status.Code(err))

	req = base()
	req.Template = "verify_email"
	req.Data = map[string]string{"token": "t"}
	req.Channels = append(req.Channels, notificationv1.Channel_CHANNEL_IN_APP)
	_, err = b.api.internal.Send(context.Background(), req)
	require.Equal(t, codes.InvalidArgument, status.Code(err), "an address has no inbox")
}

func TestTemplatesRenderLinksFromThePublicURL(t *testing.T) {
	t.Parallel()
	c, err := newCatalog(testPublicURL + "/")
	require.NoError(t, err)
	for name, data := range map[string]map[string]string{
		"verify_email":     {"token": "a&b"},
		"reset_password":   {"token": "a&b"},
		"password_changed": {},
		"signup_attempt":   {},
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
