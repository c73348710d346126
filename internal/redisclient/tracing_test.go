package redisclient

import (
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func TestCommandSpansCarryNoStatementCallerOrDial(t *testing.T) {
	t.Parallel()
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	ctx, request := tp.Tracer("test").Start(t.Context(), "request", trace.WithSpanKind(trace.SpanKindServer))
	// Opening pings on a new connection: a dial, then PING.
	client, err := Open(ctx, testRedisURL(), WithTracerProvider(tp))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, client.Close()) })
	key := testKey(t, client)
	require.NoError(t, client.Set(ctx, key, "session-token-value", 0).Err())
	request.End()

	var names []string
	for _, s := range spans.Ended() {
		names = append(names, s.Name())
		for _, kv := range s.Attributes() {
			require.False(t, strings.HasPrefix(string(kv.Key), "code."), "caller attribute %s", kv.Key)
			require.NotContains(t, kv.Value.String(), "session-token-value")
		}
	}
	require.Equal(t, []string{"ping", "set", "request"}, names)
}

func TestHandshakeCommandsAreNotTraced(t *testing.T) {
	t.Parallel()
	for cmd, want := range map[string]bool{"AUTH": true, "hello": true, "client": true, "select": true, "get": false, "evalsha": false} {
		require.Equal(t, want, isHandshake(redis.NewCmd(t.Context(), cmd)), cmd)
	}
}
