package notification

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"os"
	"path/filepath"
	"time"
)

// mailboxMailer is the dev stand-in for SendGrid: each email becomes an .eml file under
// dir, which any mail client opens, and one log line says who it was for.
type mailboxMailer struct {
	dir  string
	from *mail.Address
	log  *slog.Logger
	now  func() time.Time
}

func (m *mailboxMailer) send(ctx context.Context, e email) (string, error) {
	if err := os.MkdirAll(m.dir, 0o750); err != nil {
		return "", retryableError(err)
	}
	raw, err := m.render(e)
	if err != nil {
		return "", &sendError{permanent: true, msg: err.Error(), reason: "the email could not be built"}
	}
	// Named by notification, and written whole before it appears: a retried email
	// replaces its file rather than adding a second one.
	name := filepath.Join(m.dir, e.notificationID.String()+".eml")
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return "", retryableError(err)
	}
	if err := os.Rename(tmp, name); err != nil {
		return "", retryableError(err)
	}
	m.log.InfoContext(ctx, "email written to the dev mailbox", "to", e.to, "subject", e.subject, "file", name)
	return "mailbox-" + e.notificationID.String(), nil
}

// render builds the email as RFC 5322 text with text and HTML alternatives.
func (m *mailboxMailer) render(e email) ([]byte, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, part := range []struct{ contentType, content string }{
		{"text/plain; charset=utf-8", e.text},
		{"text/html; charset=utf-8", e.html},
	} {
		w, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.contentType},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, err
		}
		qp := quotedprintable.NewWriter(w)
		if _, err := qp.Write([]byte(part.content)); err != nil {
			return nil, err
		}
		if err := qp.Close(); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}

	var out bytes.Buffer
	header := func(k, v string) { fmt.Fprintf(&out, "%s: %s\r\n", k, v) }
	header("From", m.from.String())
	header("To", (&mail.Address{Address: e.to}).String())
	header("Subject", mime.QEncoding.Encode("utf-8", e.subject))
	header("Date", m.now().UTC().Format(time.RFC1123Z))
	header("Message-ID", "<"+e.notificationID.String()+"@backplane.localhost>")
	header("MIME-Version", "1.0")
	if e.unsubscribeURL != "" {
		header("List-Unsubscribe", "<"+e.unsubscribeURL+">")
		header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
	}
	header("X-Backplane-Notification-Id", e.notificationID.String())
	header("Content-Type", "multipart/alternative; boundary="+mw.Boundary())
	out.WriteString("\r\n")
	out.Write(body.Bytes())
	return out.Bytes(), nil
}
