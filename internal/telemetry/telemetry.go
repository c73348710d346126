package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Telemetry owns a process's telemetry: a tracer and a meter provider per piece the
// process hosts, the exporters they share, and the Prometheus registry their metrics
// are served from. Build it once in main with New, hand each piece's providers to
// the components of that piece, and call Shutdown on the way out so that buffered
// spans and metrics are not lost.
type Telemetry struct {
	// process is the process's own identity: its one piece, or, in a process hosting
	// several pieces or none, a provider pair named after the process.
	process *Piece
	pieces  map[string]*Piece
	// providers lists every distinct Piece, for flushing and shutting down.
	providers []*Piece

	propagator     propagation.TextMapPropagator
	registry       *prometheus.Registry
	metricsHandler http.Handler
	logger         *slog.Logger
	flushBudget    time.Duration

	// spanProcessors are shared by every tracer provider and shut down once, here.
	spanProcessors []sdktrace.SpanProcessor
	spanQueue      *spanQueue
	spanExporter   *spanExporter
	spanLog        *exportLog
	// metricExporter is shared by every piece's periodic reader; nil without OTLP.
	metricExporter *metricExporter
	metricLog      *exportLog
	// runtimeMetrics pushes the Go runtime and process metrics; nil without OTLP.
	runtimeMetrics *sdkmetric.MeterProvider

	shutdownOnce sync.Once
	shutdownErr  error
	// stopping is set once Shutdown has begun.
	stopping atomic.Bool
}

// Piece is the telemetry of one piece of Backplane: everything the piece's
// components create spans and instruments from, reporting under its own
// service.name.
type Piece struct {
	name           string
	serviceName    string
	tracerProvider *tracerProvider
	meterProvider  *sdkmetric.MeterProvider
	propagator     propagation.TextMapPropagator
}

// Name returns the piece's name, as given in Config.Pieces.
func (p *Piece) Name() string { return p.name }

// ServiceName returns the service.name the piece reports under.
func (p *Piece) ServiceName() string { return p.serviceName }

// TracerProvider returns the provider the piece's components create tracers from.
func (p *Piece) TracerProvider() trace.TracerProvider { return p.tracerProvider }

// tracerProvider is the SDK's provider, saying whether it can record anything at all
// (RecordsSpans).
type tracerProvider struct {
	*sdktrace.TracerProvider
	records bool
}

// RecordsSpans reports whether any span started from the provider can be recorded:
// false when no exporter and no span processor is configured.
func (tp *tracerProvider) RecordsSpans() bool { return tp.records }

// RecordsSpans reports whether tp can ever record a span: false for the providers of a
// process with no exporter configured and for the no-op provider. Instrumentation whose
// only product is spans (not metrics, not trace context carried to the next hop) can be
// left out when it is false, so that requests do not pay for spans nobody keeps.
func RecordsSpans(tp trace.TracerProvider) bool {
	switch tp := tp.(type) {
	case interface{ RecordsSpans() bool }:
		return tp.RecordsSpans()
	case noop.TracerProvider, *noop.TracerProvider:
		return false
	}
	return true
}

// MeterProvider returns the provider the piece's components create meters from.
func (p *Piece) MeterProvider() metric.MeterProvider { return p.meterProvider }

// Propagator returns the W3C trace-context and baggage propagator, the same for
// every piece.
func (p *Piece) Propagator() propagation.TextMapPropagator { return p.propagator }

// New builds the providers described by cfg and the environment. It does not wait
// for an OTLP collector: exporters connect and retry in the background. ctx bounds
// only the construction (resource detection); it is not retained.
func New(ctx context.Context, cfg Config) (*Telemetry, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	traces, err := exportFor(tracesSignal, cfg)
	if err != nil {
		return nil, err
	}
	metrics, err := exportFor(metricsSignal, cfg)
	if err != nil {
		return nil, err
	}
	envSampler, samplerName, err := samplerFromEnv()
	if err != nil {
		return nil, err
	}
	sampler := envSampler
	records := traces.enabled || len(cfg.SpanProcessors) > 0
	switch {
	case !records:
		// Nowhere to send spans: record none, so instrumentation skips its attribute
		// work, while trace ids still propagate and reach the logs.
		sampler, samplerName = sdktrace.NeverSample(), "none (no exporter)"
	case cfg.Sampler != nil:
		sampler, samplerName = cfg.Sampler, cfg.Sampler.Description()
	}

	id, err := newIdentity(ctx, cfg)
	if err != nil {
		if !errors.Is(err, resource.ErrPartialResource) {
			return nil, err
		}
		// Missing host details are not worth refusing to start over.
		if cfg.Logger != nil {
			cfg.Logger.WarnContext(ctx, "telemetry: partial resource", "error", err.Error())
		}
	}
	reg, err := newRegistry()
	if err != nil {
		return nil, err
	}
	t := &Telemetry{
		pieces: map[string]*Piece{},
		propagator: propagation.NewCompositeTextMapPropagator(
			propagation.TraceContext{},
			propagation.Baggage{},
		),
		registry:       reg,
		metricsHandler: newMetricsHandler(reg, cfg.Logger),
		logger:         cfg.Logger,
		flushBudget:    FlushBudget(cfg.ShutdownTimeout),
		spanLog:        newExportLog(cfg.Logger, "traces", "spans", "dropped_spans"),
		metricLog:      newExportLog(cfg.Logger, "metrics", "data points", "dropped_points"),
	}
	// Whatever fails from here on, nothing has been recorded yet: shutting down what
	// was built has nothing to wait for.
	fail := func(err error) (*Telemetry, error) {
		_ = t.shutdown(context.WithoutCancel(ctx))
		return nil, err
	}

	if traces.enabled {
		exp, err := newSpanExporter(ctx, traces)
		if err != nil {
			return fail(err)
		}
		size := batchQueueSize()
		wrapped := &spanExporter{next: exp, log: t.spanLog}
		t.spanQueue = &spanQueue{
			SpanProcessor: sdktrace.NewBatchSpanProcessor(wrapped, sdktrace.WithMaxQueueSize(size)),
			limit:         int64(size),
			log:           t.spanLog,
		}
		wrapped.queue = t.spanQueue
		t.spanExporter = wrapped
		t.spanProcessors = append(t.spanProcessors, t.spanQueue)
	}
	t.spanProcessors = append(t.spanProcessors, cfg.SpanProcessors...)
	if metrics.enabled {
		exp, err := newMetricExporter(ctx, metrics)
		if err != nil {
			return fail(err)
		}
		t.metricExporter = &metricExporter{Exporter: exp, log: t.metricLog}
	}

	build := func(piece, name string) (*Piece, error) {
		res, err := id.resource(name)
		if err != nil {
			return nil, err
		}
		prom, err := newPrometheusReader(reg)
		if err != nil {
			return nil, err
		}
		tpOpts := []sdktrace.TracerProviderOption{
			sdktrace.WithResource(res),
			sdktrace.WithSampler(noiseSampler{next: sampler}),
		}
		for _, sp := range t.spanProcessors {
			tpOpts = append(tpOpts, sdktrace.WithSpanProcessor(sharedProcessor{sp}))
		}
		mpOpts := []sdkmetric.Option{
			sdkmetric.WithResource(res),
			sdkmetric.WithView(metricView),
			sdkmetric.WithReader(prom),
		}
		if t.metricExporter != nil {
			mpOpts = append(mpOpts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(t.metricExporter)))
		}
		p := &Piece{
			name:           piece,
			serviceName:    name,
			tracerProvider: &tracerProvider{TracerProvider: sdktrace.NewTracerProvider(tpOpts...), records: records},
			meterProvider:  sdkmetric.NewMeterProvider(mpOpts...),
			propagator:     t.propagator,
		}
		t.providers = append(t.providers, p)
		return p, nil
	}
	for _, piece := range cfg.Pieces {
		p, err := build(piece, id.pieceName(piece))
		if err != nil {
			return fail(err)
		}
		t.pieces[piece] = p
	}
	if len(cfg.Pieces) == 1 {
		t.process = t.pieces[cfg.Pieces[0]]
	} else if t.process, err = build("", id.processName(strings.TrimSpace(cfg.ServiceName))); err != nil {
		return fail(err)
	}

	if t.metricExporter != nil {
		res, err := id.resource(t.process.serviceName)
		if err != nil {
			return fail(err)
		}
		t.runtimeMetrics = sdkmetric.NewMeterProvider(
			sdkmetric.WithResource(res),
			sdkmetric.WithReader(sdkmetric.NewPeriodicReader(t.metricExporter)),
		)
		if err := startProcessMetrics(t.runtimeMetrics, time.Now()); err != nil {
			return fail(err)
		}
	}

	if cfg.Logger != nil {
		cfg.Logger.InfoContext(ctx, "telemetry",
			"service", t.process.serviceName,
			"pieces", len(cfg.Pieces),
			"traces", describeExport(traces),
			"sampler", samplerName,
			"metrics", describeExport(metrics)+" and /metrics",
		)
	}
	return t, nil
}

// describeExport says where a signal goes, for the start-up line.
func describeExport(e export) string {
	if !e.enabled {
		return "off"
	}
	return "otlp " + e.protocol
}

// batchQueueSize is the batch span processor's queue size: OTEL_BSP_MAX_QUEUE_SIZE,
// else the SDK's default. spanQueue needs the number, which the SDK does not expose,
// so it is read here and passed to the SDK explicitly.
func batchQueueSize() int {
	if n, err := strconv.Atoi(strings.TrimSpace(os.Getenv("OTEL_BSP_MAX_QUEUE_SIZE"))); err == nil && n > 0 {
		return n
	}
	return sdktrace.DefaultMaxQueueSize
}

// FlushBudget is how long Shutdown waits for the final flush, given the process's
// whole shutdown budget (BACKPLANE_SHUTDOWN_TIMEOUT): a quarter of it, at most 5s, so
// that a dead collector costs a few seconds of the shutdown rather than the
// exporters' full retry time. The assembler drains its servers within the rest.
func FlushBudget(shutdownTimeout time.Duration) time.Duration {
	const most = 5 * time.Second
	if shutdownTimeout <= 0 {
		return most
	}
	return min(most, shutdownTimeout/4)
}

// Piece returns the telemetry of a piece named in Config.Pieces.
func (t *Telemetry) Piece(name string) (*Piece, error) {
	p, ok := t.pieces[name]
	if !ok {
		return nil, fmt.Errorf("telemetry: no piece %q (this process hosts: %s)", name,
			strings.Join(slices.Sorted(maps.Keys(t.pieces)), ", "))
	}
	return p, nil
}

// TracerProvider returns the provider of the process's own identity: its one
// piece's, or, when it hosts several pieces or none, the process's.
func (t *Telemetry) TracerProvider() trace.TracerProvider { return t.process.tracerProvider }

// MeterProvider returns the meter provider of the process's own identity, as
// TracerProvider does.
func (t *Telemetry) MeterProvider() metric.MeterProvider { return t.process.meterProvider }

// Propagator returns the W3C trace-context and baggage propagator used to carry
// traces across HTTP and gRPC calls.
func (t *Telemetry) Propagator() propagation.TextMapPropagator { return t.propagator }

// MetricsHandler serves every metric of the process in Prometheus format, each
// series labelled with its piece's service_name; mount it at /metrics on an internal
// listener.
func (t *Telemetry) MetricsHandler() http.Handler { return t.metricsHandler }

// Registry returns the Prometheus registry behind MetricsHandler, for collectors
// written directly against client_golang.
func (t *Telemetry) Registry() *prometheus.Registry { return t.registry }

// ForceFlush exports what is buffered now, without waiting for the next batch or
// interval. Export failures are reported in the log, not returned.
func (t *Telemetry) ForceFlush(ctx context.Context) error {
	var errs []error
	for _, sp := range t.spanProcessors {
		errs = append(errs, sp.ForceFlush(ctx))
	}
	for _, p := range t.providers {
		errs = append(errs, p.meterProvider.ForceFlush(ctx))
	}
	if t.runtimeMetrics != nil {
		errs = append(errs, t.runtimeMetrics.ForceFlush(ctx))
	}
	return errors.Join(errs...)
}

// Shutdown flushes buffered spans and metrics and stops the providers; spans and
// measurements recorded afterwards are dropped. It returns when the flush is done,
// ctx ends or the flush budget (FlushBudget of Config.ShutdownTimeout) runs out,
// whichever comes first, logging what could not be sent. Call it once, after the
// servers have drained; later calls return the first call's result.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	t.shutdownOnce.Do(func() {
		t.stopping.Store(true)
		ctx, cancel := context.WithTimeout(ctx, t.flushBudget)
		defer cancel()
		t.shutdownErr = t.shutdown(ctx)
	})
	return t.shutdownErr
}

// shutdown stops traces and metrics side by side, so that neither waits for the
// other's dead collector.
func (t *Telemetry) shutdown(ctx context.Context) error {
	var (
		wg                   sync.WaitGroup
		traceErr, metricsErr error
	)
	wg.Go(func() { traceErr = t.shutdownTraces(ctx) })
	wg.Go(func() { metricsErr = t.shutdownMetrics(ctx) })
	wg.Wait()
	return errors.Join(traceErr, metricsErr)
}

func (t *Telemetry) shutdownTraces(ctx context.Context) error {
	var errs []error
	for _, p := range t.providers {
		errs = append(errs, p.tracerProvider.Shutdown(ctx))
	}
	// The providers left the shared processors running; the batch processor flushes
	// its queue now.
	for _, sp := range t.spanProcessors {
		errs = append(errs, sp.Shutdown(ctx))
	}
	var unsent int64
	if t.spanExporter != nil {
		// Still queued, or in an export that has not returned: the process exits
		// without them.
		unsent = max(t.spanQueue.queued.Load(), 0) + t.spanExporter.inFlight.Load()
	}
	t.spanLog.close(unsent)
	return errors.Join(errs...)
}

func (t *Telemetry) shutdownMetrics(ctx context.Context) error {
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		errs   []error
		unsent int64
	)
	stop := func(mp *sdkmetric.MeterProvider) {
		wg.Go(func() {
			err := mp.Shutdown(ctx)
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		})
	}
	for _, p := range t.providers {
		stop(p.meterProvider)
	}
	if t.runtimeMetrics != nil {
		stop(t.runtimeMetrics)
	}
	wg.Wait()
	if t.metricExporter != nil {
		errs = append(errs, t.metricExporter.Exporter.Shutdown(ctx))
		unsent = t.metricExporter.inFlight.Load()
	}
	t.metricLog.close(unsent)
	return errors.Join(errs...)
}
