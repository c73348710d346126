package notification

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc/metadata"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	"github.com/backplane/backplane/internal/fault"
)

// webhookSigner signs webhook bodies as SendGrid does.
type webhookSigner struct{ key *ecdsa.PrivateKey }

func newWebhookSigner(t *testing.T) webhookSigner {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return webhookSigner{key: key}
}

func (w webhookSigner) publicKeyBase64(t *testing.T) string {
	der, err := x509.MarshalPKIXPublicKey(&w.key.PublicKey)
	require.NoError(t, err)
	return base64.StdEncoding.EncodeToString(der)
}

// request builds a webhook call as the gateway forwards it: raw body plus the signature
// headers as metadata.
func (w webhookSigner) request(t *testing.T, at time.Time, events ...map[string]any) (context.Context, *notificationv1.HandleSendgridEventsRequest) {
	body, err := json.Marshal(events)
	require.NoError(t, err)
	ts := strconv.FormatInt(at.Unix(), 10)
	digest := sha256.Sum256(append([]byte(ts), body...))
	sig, err := ecdsa.SignASN1(rand.Reader, w.key, digest[:])
	require.NoError(t, err)
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(
		signatureKey, base64.StdEncoding.EncodeToString(sig), timestampKey, ts,
	))
	return ctx, &notificationv1.HandleSendgridEventsRequest{Body: &httpbody.HttpBody{ContentType: "application/json", Data: body}}
}

func setupWebhook(t *testing.T) (*bundle, webhookSigner) {
	signer := newWebhookSigner(t)
	key, err := parseWebhookKey(signer.publicKeyBase64(t))
	require.NoError(t, err)
	return setup(t, func(s *Config) { s.WebhookKey = key }), signer
}

func (b *bundle) sentEmail(t *testing.T, to string) uuid.UUID {
	t.Helper()
	id := b.send(t, &notificationv1.SendRequest{Recipient: &notificationv1.SendRequest_Email{Email: to}})
	b.waitForStatus(t, id, statusSent)
	return id
}

func (b *bundle) storedEvents(t *testing.T) int {
	var n int
	require.NoError(t, b.pool.QueryRow(context.Background(), "SELECT count(*) FROM sendgrid_event").Scan(&n))
	return n
}

func TestWebhookUpdatesStatusOnce(t *testing.T) {
	t.Parallel()
	b, signer := setupWebhook(t)
	startWorkers(t, b.server, 1)
	id := b.sentEmail(t, "a@example.test")

	event := map[string]any{"sg_event_id": "ev-1", "event": "delivered", "email": "a@example.test", "notification_id": id.String()}
	ctx, req := signer.request(t, time.Now(), event, map[string]any{"sg_event_id": "ev-2", "event": "open", "email": "a@example.test"})
	_, err := b.server.HandleSendgridEvents(ctx, req)
	require.NoError(t, err)
	require.Equal(t, statusDelivered, b.email(t, id).Status)
	require.Equal(t, 2, b.storedEvents(t))

	// SendGrid retries the same batch: nothing changes.
	_, err = b.server.HandleSendgridEvents(ctx, req)
	require.NoError(t, err)
	require.Equal(t, 2, b.storedEvents(t))
}

func TestWebhookReplayedEventIsNotAppliedAgain(t *testing.T) {
	t.Parallel()
	b, signer := setupWebhook(t)
	startWorkers(t, b.server, 1)
	id := b.sentEmail(t, "a@example.test")

	dropped := map[string]any{"sg_event_id": "ev-drop", "event": "dropped", "reason": "Invalid", "email": "a@example.test", "notification_id": id.String()}
	_, err := b.server.HandleSendgridEvents(signer.request(t, time.Now(), dropped))
	require.NoError(t, err)
	require.Equal(t, statusDropped, b.email(t, id).Status)

	// Reset the status behind the service's back; a replay of the same event must not
	// touch it again.
	_, err = b.pool.Exec(context.Background(), "UPDATE outbox SET status = 'sent' WHERE notification_id = $1", id)
	require.NoError(t, err)
	_, err = b.server.HandleSendgridEvents(signer.request(t, time.Now(), dropped))
	require.NoError(t, err)
	require.Equal(t, statusSent, b.email(t, id).Status)
}

func TestWebhookBounceAndSpamReportSuppress(t *testing.T) {
	t.Parallel()
	b, signer := setupWebhook(t)
	startWorkers(t, b.server, 1)
	bounced := b.sentEmail(t, "bounce@example.test")
	b.sentEmail(t, "spam@example.test")

	_, err := b.server.HandleSendgridEvents(signer.request(t, time.Now(),
		map[string]any{"sg_event_id": "ev-b", "event": "bounce", "type": "bounce", "reason": "550 no such user", "email": "bounce@example.test", "notification_id": bounced.String()},
		map[string]any{"sg_event_id": "ev-s", "event": "spamreport", "email": "Spam@example.test"},
	))
	require.NoError(t, err)
	v := b.email(t, bounced)
	require.Equal(t, statusBounced, v.Status)

	for _, addr := range []string{"bounce@example.test", "spam@example.test"} {
		later := b.send(t, &notificationv1.SendRequest{Recipient: &notificationv1.SendRequest_Email{Email: addr}, Category: notificationv1.Category_CATEGORY_PRODUCT})
		b.waitForStatus(t, later, statusSuppressed)
		security := b.send(t, &notificationv1.SendRequest{
			Recipient: &notificationv1.SendRequest_Email{Email: addr},
			Template:  "reset_password", Data: map[string]string{"token": "t"}, Category: notificationv1.Category_CATEGORY_SECURITY,
		})
		b.waitForStatus(t, security, statusSent)
	}
}

func TestWebhookRefusesBadStaleAndUnsignedCalls(t *testing.T) {
	t.Parallel()
	b, signer := setupWebhook(t)
	event := map[string]any{"sg_event_id": "ev-x", "event": "spamreport", "email": "x@example.test"}

	// Signed by another key.
	_, err := b.server.HandleSendgridEvents(newWebhookSigner(t).request(t, time.Now(), event))
	require.Equal(t, fault.Unauthenticated, fault.KindOf(err))

	// Genuine, but older than five minutes.
	_, err = b.server.HandleSendgridEvents(signer.request(t, time.Now().Add(-6*time.Minute), event))
	require.Equal(t, fault.Unauthenticated, fault.KindOf(err))

	// Body altered after signing.
	ctx, req := signer.request(t, time.Now(), event)
	req.Body.Data = append(req.GetBody().GetData()[:len(req.GetBody().GetData())-1], ' ', ']')
	_, err = b.server.HandleSendgridEvents(ctx, req)
	require.Equal(t, fault.Unauthenticated, fault.KindOf(err))

	// No signature at all.
	_, req = signer.request(t, time.Now(), event)
	_, err = b.server.HandleSendgridEvents(context.Background(), req)
	require.Equal(t, fault.Unauthenticated, fault.KindOf(err))

	require.Equal(t, 0, b.storedEvents(t))
	suppressed, err := b.server.store.suppressed(context.Background(), "x@example.test", "product")
	require.NoError(t, err)
	require.False(t, suppressed)
}

func TestWebhookWithoutKeyRefusesEverything(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.server.HandleSendgridEvents(newWebhookSigner(t).request(t, time.Now(), map[string]any{"sg_event_id": "e", "event": "delivered"}))
	require.Equal(t, fault.Unauthenticated, fault.KindOf(err))
}

func TestOldWebhookEventIDsAreForgotten(t *testing.T) {
	t.Parallel()
	b, signer := setupWebhook(t)
	_, err := b.server.HandleSendgridEvents(signer.request(t, time.Now(), map[string]any{"sg_event_id": "old", "event": "open"}))
	require.NoError(t, err)
	_, err = b.pool.Exec(context.Background(), "UPDATE sendgrid_event SET received_at = now() - interval '8 days'")
	require.NoError(t, err)
	_, err = b.server.HandleSendgridEvents(signer.request(t, time.Now(), map[string]any{"sg_event_id": "new", "event": "open"}))
	require.NoError(t, err)

	n, err := b.server.store.forgetSendgridEventsBefore(context.Background(), time.Now().Add(-eventRetention))
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	require.Equal(t, 1, b.storedEvents(t))
}
