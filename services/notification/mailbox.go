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
// dir, which any mail client opens, and a .txt file beside it with the plain-text part
// as it reads (the .eml's quoted-printable breaks long links), so a link or token can be
// copied from it by hand or with grep; one log line says who it was for.
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
	// Named by notification: a retried email replaces its files rather than adding more.
	base := filepath.Join(m.dir, e.notificationID.String())
	if err := writeWhole(base+".eml", raw); err != nil {
		return "", retryableError(err)
	}
	if err := writeWhole(base+".txt", m.plainText(e)); err != nil {
		return "", retryableError(err)
	}
	m.log.InfoContext(ctx, "email written to the dev mailbox", "to", e.to, "subject", e.subject, "file", base+".eml", "text", base+".txt")
	return "mailbox-" + e.notificationID.String(), nil
}

// writeWhole writes a file that appears only once it is complete.
func writeWhole(name string, data []byte) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

// plainText is the email's headers a reader needs and its text part, undecorated.
func (m *mailboxMailer) plainText(e email) []byte {
	var out bytes.Buffer
	fmt.Fprintf(&out, "To: %s\nSubject: %s\nDate: %s\n\n%s", e.to, e.subject, m.now().UTC().Format(time.RFC1123Z), e.text)
	if !bytes.HasSuffix(out.Bytes(), []byte("\n")) {
		out.WriteByte('\n')
	}
	return out.Bytes()
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
