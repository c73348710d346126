package notification

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
)

func benchRequest() *notificationv1.SendRequest {
	return &notificationv1.SendRequest{
		Recipient: &notificationv1.SendRequest_Email{Email: "bench@example.test"},
		Template:  "message", Data: map[string]string{"title": "Usage at 80%", "body": "You used 80% of your quota.", "path": "/usage"},
		Category: notificationv1.Category_CATEGORY_USAGE,
		Channels: []notificationv1.Channel{notificationv1.Channel_CHANNEL_EMAIL}, IdempotencyKey: uuid.NewString(),
	}
}

// BenchmarkDelivery measures emails delivered per second to the local SendGrid stand-in:
// b.N emails are accepted first, then the workers work their jobs against the clock.
func BenchmarkDelivery(b *testing.B) {
	for _, workers := range []int{1, 4} {
		b.Run("workers="+strconv.Itoa(workers), func(b *testing.B) {
			bb := setup(b)
			for range b.N {
				_, err := bb.server.Send(context.Background(), benchRequest())
				require.NoError(b, err)
			}
			b.ResetTimer()
			start := time.Now()
			startWorkers(b, bb.server, workers)
			require.Eventually(b, func() bool {
				n, err := bb.server.store.q.DeliveryCountByStatus(context.Background(), statusSent)
				return err == nil && int(n) == b.N
			}, 5*time.Minute, time.Millisecond)
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "emails/s")
			require.Len(b, bb.sendgrid.sent(), b.N)
		})
	}
}

// BenchmarkSend measures Send, which commits the notification, its delivery row and its
// email's job in one transaction, and reports its 99th percentile latency.
func BenchmarkSend(b *testing.B) {
	bb := setup(b)
	latencies := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		req := benchRequest()
		start := time.Now()
		_, err := bb.server.Send(context.Background(), req)
		latencies = append(latencies, time.Since(start))
		require.NoError(b, err)
	}
	b.StopTimer()
	slices.Sort(latencies)
	b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds()), "p50-µs")
}
