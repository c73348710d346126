package notification

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/sendgrid/rest"
	"github.com/sendgrid/sendgrid-go"
	sgmail "github.com/sendgrid/sendgrid-go/helpers/mail"
)

// sendgridMailer delivers through SendGrid's v3 mail send API with the sendgrid-go client.
type sendgridMailer struct {
	apiKey  string
	baseURL string
	from    *mail.Address
	client  *rest.Client
	now     func() time.Time
}

func newSendgridMailer(cfg Config) *sendgridMailer {
	return &sendgridMailer{
		apiKey:  cfg.SendgridAPIKey,
		baseURL: cfg.SendgridBaseURL,
		from:    cfg.EmailFrom,
		// The context carries each send's deadline; the client timeout is a backstop.
		client: &rest.Client{HTTPClient: &http.Client{Timeout: cfg.sendTimeout()}},
		now:    time.Now,
	}
}

// notificationIDArg is the custom_args key that carries our id through SendGrid, so
// event webhooks name the notification they are about.
const notificationIDArg = "notification_id"

func (m *sendgridMailer) send(ctx context.Context, e email) (string, error) {
	msg := sgmail.NewV3Mail()
	msg.SetFrom(sgmail.NewEmail(m.from.Name, m.from.Address))
	msg.Subject = e.subject
	p := sgmail.NewPersonalization()
	p.AddTos(sgmail.NewEmail("", e.to))
	msg.AddPersonalizations(p)
	msg.AddContent(sgmail.NewContent("text/plain", e.text), sgmail.NewContent("text/html", e.html))
	if e.unsubscribeURL != "" {
		msg.SetHeader("List-Unsubscribe", "<"+e.unsubscribeURL+">")
		msg.SetHeader("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
	}
	msg.SetCustomArg(notificationIDArg, e.notificationID.String())

	req := sendgrid.GetRequest(m.apiKey, "/v3/mail/send", m.baseURL)
	req.Method = rest.Post
	req.Body = sgmail.GetRequestBody(msg)
	resp, err := m.client.SendWithContext(ctx, req)
	if err != nil {
		// A network error or timeout: SendGrid may or may not have the message. Retrying
		// risks a duplicate, losing it is worse.
		return "", &sendError{msg: "sendgrid: " + err.Error(), reason: "SendGrid could not be reached"}
	}
	h := http.Header(resp.Headers)
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return h.Get("X-Message-Id"), nil
	}
	se := &sendError{
		msg:    fmt.Sprintf("sendgrid answered %d: %s", code, brief(resp.Body)),
		reason: fmt.Sprintf("SendGrid answered %d", code),
	}
	if said := sendgridMessages(resp.Body); said != "" {
		se.reason += ": " + said
	}
	if code == http.StatusTooManyRequests || code >= 500 {
		se.retryAfter = m.retryAfter(h)
	} else {
		se.permanent = true
	}
	return "", se
}

// sendgridMessages reads the messages of SendGrid's error body,
// {"errors":[{"message":"…","field":"…"}]}, which say what was wrong with the email.
func sendgridMessages(body string) string {
	var parsed struct {
		Errors []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal([]byte(body), &parsed) != nil {
		return ""
	}
	var msgs []string
	for _, e := range parsed.Errors {
		if e.Message != "" {
			msgs = append(msgs, e.Message)
		}
	}
	return brief(strings.Join(msgs, "; "))
}

// retryAfter reads how long SendGrid asked us to wait: Retry-After (seconds or a date),
// else X-RateLimit-Reset (the Unix time the limit resets).
func (m *sendgridMailer) retryAfter(h http.Header) time.Duration {
	if v := h.Get("Retry-After"); v != "" {
		if secs, err := strconv.Atoi(v); err == nil && secs > 0 {
			return time.Duration(secs) * time.Second
		}
		if t, err := http.ParseTime(v); err == nil {
			return max(t.Sub(m.now()), 0)
		}
	}
	if v := h.Get("X-RateLimit-Reset"); v != "" {
		if unix, err := strconv.ParseInt(v, 10, 64); err == nil {
			return max(time.Unix(unix, 0).Sub(m.now()), 0)
		}
	}
	return 0
}

// brief keeps an error body short enough for a log line and the delivery's last_error.
func brief(body string) string {
	body = strings.TrimSpace(body)
	if len(body) > 300 {
		return body[:300] + "…"
	}
	return body
}
