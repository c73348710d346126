package notification

import (
	"mime"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
)

func TestWithoutSendgridKeyEmailsGoToTheMailbox(t *testing.T) {
	t.Parallel()
	b := setup(t, func(s *Config) { s.SendgridAPIKey = "" })
	startWorkers(t, b.server, 1)

	id := b.send(t, &notificationv1.SendRequest{
		Recipient: &notificationv1.SendRequest_Email{Email: "dev@example.test"},
		Template:  "message", Data: map[string]string{"title": "Café receipt", "body": "Paid."},
		Category: notificationv1.Category_CATEGORY_BILLING,
	})
	b.waitForStatus(t, id, statusSent)
	require.Empty(t, b.sendgrid.sent())

	f, err := os.Open(filepath.Join(b.deps.DataDir, "mailbox", id.String()+".eml"))
	require.NoError(t, err)
	defer func() { _ = f.Close() }()
	msg, err := mail.ReadMessage(f)
	require.NoError(t, err)
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	require.NoError(t, err)
	require.Equal(t, "Café receipt", subject)
	require.Equal(t, "<dev@example.test>", msg.Header.Get("To"))
	require.True(t, strings.HasPrefix(msg.Header.Get("List-Unsubscribe"), "<"+testPublicURL+"/v1/unsubscribe/"))
	require.Equal(t, "List-Unsubscribe=One-Click", msg.Header.Get("List-Unsubscribe-Post"))
	require.Contains(t, msg.Header.Get("Content-Type"), "multipart/alternative")

	// Beside it, the text part as it reads: no quoted-printable soft breaks or escapes.
	text, err := os.ReadFile(filepath.Join(b.deps.DataDir, "mailbox", id.String()+".txt"))
	require.NoError(t, err)
	require.Contains(t, string(text), "To: dev@example.test\nSubject: Café receipt\n")
	require.Contains(t, string(text), "Paid.")
}

func TestMailboxTextKeepsLongLinksWhole(t *testing.T) {
	t.Parallel()
	b := setup(t, func(s *Config) { s.SendgridAPIKey = "" })
	startWorkers(t, b.server, 1)

	token := strings.Repeat("Ab0_-", 20) // longer than a quoted-printable line
	id := b.send(t, &notificationv1.SendRequest{
		Recipient: &notificationv1.SendRequest_Email{Email: "dev@example.test"},
		Template:  "verify_email", Data: map[string]string{"token": token},
		Category: notificationv1.Category_CATEGORY_SECURITY,
	})
	b.waitForStatus(t, id, statusSent)

	eml, err := os.ReadFile(filepath.Join(b.deps.DataDir, "mailbox", id.String()+".eml"))
	require.NoError(t, err)
	require.NotContains(t, string(eml), "token="+token, "the .eml's text part is quoted-printable, its lines folded")
	text, err := os.ReadFile(filepath.Join(b.deps.DataDir, "mailbox", id.String()+".txt"))
	require.NoError(t, err)
	require.Contains(t, string(text), testPublicURL+"/verify-email?token="+token)
}
