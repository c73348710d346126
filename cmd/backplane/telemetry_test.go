package main_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/dbtest"
	"github.com/backplane/backplane/internal/otlptest"
	"github.com/backplane/backplane/internal/scenario"
)

// otlpEnv points a process's OTLP export at endpoint over protocol, with sampler, and
// exports spans every 100 ms rather than every 5 s.
func otlpEnv(endpoint, protocol, sampler, samplerArg string) []string {
	return []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + endpoint,
		"OTEL_EXPORTER_OTLP_PROTOCOL=" + protocol,
		"OTEL_TRACES_SAMPLER=" + sampler,
		"OTEL_TRACES_SAMPLER_ARG=" + samplerArg,
		"OTEL_BSP_SCHEDULE_DELAY=100",
		"OTEL_SERVICE_NAME=",
		"OTEL_RESOURCE_ATTRIBUTES=",
	}
}

// signUp signs a new account up through the REST door and waits for its verification
// email to reach the dev mailbox.
func signUp(t *testing.T, p *devProcess) {
	t.Helper()
	email := fmt.Sprintf("grace+%d@example.com", time.Now().UnixNano())
	code, body := api{base: "http://" + p.http}.call(t, http.MethodPost, "/v1/auth/signup", "",
		map[string]string{"email": email, "password": "correct horse battery", "displayName": "Grace"})
	require.Equal(t, http.StatusOK, code, body)
	verificationToken(t, p.dataDir, email)
}

// waitForSpan waits until rec holds a span that match accepts, and returns it.
func waitForSpan(t *testing.T, rec *otlptest.Receiver, what string, match func(otlptest.Span) bool) otlptest.Span {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var found otlptest.Span
	err := rec.Wait(ctx, func(spans []otlptest.Span, _ []otlptest.Point) bool {
		i := slices.IndexFunc(spans, match)
		if i >= 0 {
			found = spans[i]
		}
		return i >= 0
	})
	require.NoError(t, err, "no span of %s reached the collector", what)
	return found
}

// requireSeries requires a series of metric (a name or its prefix) in a Prometheus
// scrape carrying every label of labels.
func requireSeries(t *testing.T, scrape, metric string, labels ...string) {
	t.Helper()
	var named []string
	for line := range strings.Lines(scrape) {
		if !strings.HasPrefix(line, metric) {
			continue
		}
		named = append(named, line)
		if !slices.ContainsFunc(labels, func(l string) bool { return !strings.Contains(line, l) }) {
			return
		}
	}
	t.Fatalf("no series %s with %v among:\n%s", metric, labels, strings.Join(named, ""))
}

// TestTelemetryTracesASignUpToItsEmail runs `backplane dev` against an in-process OTLP
// receiver: a sign-up is one trace from the REST edge to the email leaving, each piece
// reports under its own service.name, REST spans carry their route, and probes,
// scrapes and housekeeping leave no trace.
func TestTelemetryTracesASignUpToItsEmail(t *testing.T) {
	t.Parallel()
	rec := otlptest.Start(t)
	p := startDev(t, dbtest.NewDatabase(t), otlpEnv(rec.GRPCEndpoint(), otlptest.ProtocolGRPC, "parentbased_always_on", "")...)
	defer p.stop(t)

	scenario.Step(t, "sign up, and the email is delivered", func(t *testing.T) {
		signUp(t, p)
	})
	scenario.Step(t, "one trace runs from the REST edge to the email leaving", func(t *testing.T) {
		signup := waitForSpan(t, rec, "the sign-up", func(s otlptest.Span) bool {
			return s.Service == "backplane-gateway" && s.Name == "POST /v1/auth/signup"
		})
		require.Equal(t, "server", signup.Kind)
		require.Empty(t, signup.ParentSpanID, "the REST request starts the trace")
		require.Equal(t, "/v1/auth/signup", signup.Attributes["http.route"])
		waitForSpan(t, rec, "the email recorded sent", func(s otlptest.Span) bool {
			return s.TraceID == signup.TraceID && s.Name == "notification.email.mark_sent"
		})

		var trace []string
		for _, s := range rec.Spans() {
			if s.TraceID == signup.TraceID {
				trace = append(trace, s.Service+" "+s.Kind+" "+s.Name)
			}
		}
		for _, want := range []string{
			"backplane-gateway server POST /v1/auth/signup",
			"backplane-auth server backplane.auth.v1.AuthService/SignUp",
			"backplane-auth client backplane.notification.v1.NotificationService/Send",
			"backplane-notification server backplane.notification.v1.NotificationService/Send",
			"backplane-notification producer river.insert_many",
			"backplane-notification consumer river.work/notification_email",
			"backplane-notification internal notification.email.claim",
			"backplane-notification client backplane.auth.v1.AuthService/LookupUser",
			"backplane-auth server backplane.auth.v1.AuthService/LookupUser",
			"backplane-notification internal notification.email.send",
			"backplane-notification internal notification.email.mark_sent",
		} {
			require.Contains(t, trace, want, "the sign-up's trace:\n%s", strings.Join(trace, "\n"))
		}
	})
	scenario.Step(t, "each span and series names its piece", func(t *testing.T) {
		services := map[string]bool{}
		for _, s := range rec.Spans() {
			services[s.Service] = true
			require.Equal(t, "backplane", s.Resource["service.namespace"])
		}
		for _, want := range []string{"backplane-gateway", "backplane-auth", "backplane-notification"} {
			require.True(t, services[want], "spans of %s", want)
		}
		var whole []string
		for _, s := range rec.Spans() {
			if s.Service == "backplane" {
				whole = append(whole, s.Kind+" "+s.Name)
			}
		}
		require.Empty(t, whole, "nothing of a piece reports as the whole process")

		code, metrics := get(t, "http://"+p.admin+"/metrics")
		require.Equal(t, http.StatusOK, code)
		require.NotContains(t, metrics, "otel_scope_", "no instrumentation-library labels")
		// The edge's REST latency by route; each server's calls in a series of its own,
		// so the gRPC door and the service behind it are not summed; each pool by its
		// service.
		requireSeries(t, metrics, "http_server_request_duration_seconds_count", `http_route="/v1/auth/signup"`, `service_name="backplane-gateway"`)
		requireSeries(t, metrics, "rpc_server_call_duration_seconds_count", `rpc_method="backplane.auth.v1.AuthService/SignUp"`, `service_name="backplane-auth"`)
		requireSeries(t, metrics, "pgxpool_max_connections", `db_client_connection_pool_name="notification"`, `service_name="backplane-notification"`)
	})
	scenario.Step(t, "probes, scrapes and housekeeping leave no trace", func(t *testing.T) {
		for range 3 {
			for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
				code, body := get(t, "http://"+p.admin+path)
				require.Equal(t, http.StatusOK, code, body)
			}
		}
		// Spans leave in the order they end: once a later request's span is in, any
		// span of the probes, or of the housekeeping before it, would be too.
		code, body := get(t, "http://"+p.http+"/v1/plans")
		require.Equal(t, http.StatusOK, code, body)
		waitForSpan(t, rec, "the plans request", func(s otlptest.Span) bool { return s.Name == "GET /v1/plans" })

		for _, s := range rec.Spans() {
			require.NotContains(t, s.Name, "grpc.health", "%s traced a health check", s.Service)
			for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
				require.NotContains(t, s.Name, path, "%s traced a probe", s.Service)
			}
			if s.ParentSpanID == "" {
				// The session-mirror check, key reloads, River's polling and periodic
				// jobs would each start traces of their own.
				require.Equal(t, "server", s.Kind, "only requests start traces, not %s's %s %s", s.Service, s.Kind, s.Name)
			}
		}
	})
}

// With OTEL_TRACES_SAMPLER=traceidratio and an argument of 0, not one span leaves,
// however far a request's work goes, while metrics still do.
func TestTelemetryRatioZeroExportsNoSpan(t *testing.T) {
	t.Parallel()
	rec := otlptest.Start(t)
	p := startDev(t, dbtest.NewDatabase(t), otlpEnv(rec.HTTPEndpoint(), otlptest.ProtocolHTTPProtobuf, "traceidratio", "0")...)
	signUp(t, p)
	// Stopping flushes whatever the process holds to the receiver.
	p.stop(t)
	require.Empty(t, rec.Spans())
	require.NotEmpty(t, rec.Points(), "metrics were exported over the same protocol")
}

// With no collector listening, shutdown still keeps to BACKPLANE_SHUTDOWN_TIMEOUT: the
// final flush has a short share of it, and the log says what was lost.
func TestTelemetryShutdownWithoutACollectorKeepsToItsBudget(t *testing.T) {
	t.Parallel()
	const budget = 8 * time.Second
	p := startDev(t, dbtest.NewDatabase(t), append(otlpEnv("http://"+freeAddr(t), otlptest.ProtocolGRPC, "always_on", ""),
		"BACKPLANE_SHUTDOWN_TIMEOUT="+budget.String(), "OTEL_BSP_SCHEDULE_DELAY=60000")...)
	// Spans wait in the queue: the exporter sends once a minute here.
	code, body := get(t, "http://"+p.http+"/v1/plans")
	require.Equal(t, http.StatusOK, code, body)

	started := time.Now()
	p.stop(t)
	took := time.Since(started)
	t.Logf("shutdown took %s", took)
	require.Less(t, took, budget, "shutdown took %s\n%s", took, p.out.String())
	require.Contains(t, p.out.String(), "telemetry data lost at shutdown")
}
