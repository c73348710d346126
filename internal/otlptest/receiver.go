// Package otlptest is an in-process OTLP receiver for tests: what a collector would be
// given, over OTLP/gRPC and OTLP/HTTP (protobuf), kept in memory and flattened into
// spans and data points that assertions can read.
//
// It implements the two OTLP services tests need (traces and metrics) on the
// generated types of go.opentelemetry.io/proto/otlp, a module the OTLP exporters
// already bring in. The OpenTelemetry Collector's otlpreceiver would do the same
// behind its component framework, pdata and configuration packages: dozens of
// modules for two request handlers.
package otlptest

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	collectormetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	// Exporters configured with OTEL_EXPORTER_OTLP_COMPRESSION=gzip send gzip frames.
	_ "google.golang.org/grpc/encoding/gzip"
)

// The protocols a request came in by, as OTEL_EXPORTER_OTLP_PROTOCOL names them.
const (
	ProtocolGRPC         = "grpc"
	ProtocolHTTPProtobuf = "http/protobuf"
)

// maxBody bounds an OTLP/HTTP request body, compressed or not, so that a test that
// goes wrong fails instead of exhausting memory.
const maxBody = 64 << 20

// Receiver accepts OTLP exports on two loopback ports, one per protocol, and keeps
// what it is sent. It is safe for concurrent use.
type Receiver struct {
	grpcLis, httpLis net.Listener
	grpcServer       *grpc.Server
	httpServer       *http.Server

	mu       sync.Mutex
	spans    []Span
	points   []Point
	failing  bool
	requests int
	// changed is closed and replaced whenever something is received, waking Wait.
	changed chan struct{}

	closeOnce sync.Once
}

// New starts a receiver on two free loopback ports; ctx bounds only the start.
func New(ctx context.Context) (*Receiver, error) {
	var lc net.ListenConfig
	grpcLis, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("otlptest: listen: %w", err)
	}
	httpLis, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		_ = grpcLis.Close()
		return nil, fmt.Errorf("otlptest: listen: %w", err)
	}
	r := &Receiver{grpcLis: grpcLis, httpLis: httpLis, changed: make(chan struct{})}

	r.grpcServer = grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(r.grpcServer, traceService{r: r})
	collectormetrics.RegisterMetricsServiceServer(r.grpcServer, metricsService{r: r})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", r.serveTraces)
	mux.HandleFunc("POST /v1/metrics", r.serveMetrics)
	r.httpServer = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	go func() { _ = r.grpcServer.Serve(grpcLis) }()
	go func() { _ = r.httpServer.Serve(httpLis) }()
	return r, nil
}

// Start starts a receiver closed when the test ends.
func Start(t testing.TB) *Receiver {
	t.Helper()
	r, err := New(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// Close stops both servers; their ports then refuse connections, as a collector
// that is down does. It is safe to call more than once.
func (r *Receiver) Close() {
	r.closeOnce.Do(func() {
		r.grpcServer.Stop()
		_ = r.httpServer.Close()
	})
}

// GRPCEndpoint is the OTLP/gRPC endpoint, as OTEL_EXPORTER_OTLP_ENDPOINT takes it.
func (r *Receiver) GRPCEndpoint() string { return "http://" + r.grpcLis.Addr().String() }

// HTTPEndpoint is the OTLP/HTTP base endpoint, as OTEL_EXPORTER_OTLP_ENDPOINT takes
// it; the exporters append /v1/traces and /v1/metrics.
func (r *Receiver) HTTPEndpoint() string { return "http://" + r.httpLis.Addr().String() }

// SetFailing makes the receiver refuse every export (UNAVAILABLE over gRPC, 503 over
// HTTP, both of which exporters retry) until it is called with false: a collector
// that is up but overloaded.
func (r *Receiver) SetFailing(failing bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failing = failing
}

// Spans returns every span received so far, in order of arrival.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.spans...)
}

// Points returns every metric data point received so far, in order of arrival.
// Metrics are cumulative, so each export repeats the series; LastPoints keeps the
// latest of each.
func (r *Receiver) Points() []Point {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Point(nil), r.points...)
}

// Requests returns how many export requests were accepted, refused ones excluded.
func (r *Receiver) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

// Reset forgets everything received so far.
func (r *Receiver) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.spans, r.points, r.requests = nil, nil, 0
}

// Wait blocks until cond, called with everything received so far, returns true, or
// until ctx ends.
func (r *Receiver) Wait(ctx context.Context, cond func(spans []Span, points []Point) bool) error {
	for {
		r.mu.Lock()
		ok := cond(r.spans, r.points)
		changed := r.changed
		r.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("otlptest: waiting for telemetry: %w", context.Cause(ctx))
		}
	}
}

// accept records what one request carried, unless the receiver is failing.
func (r *Receiver) accept(spans []Span, points []Point) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failing {
		return false
	}
	r.spans = append(r.spans, spans...)
	r.points = append(r.points, points...)
	r.requests++
	close(r.changed)
	r.changed = make(chan struct{})
	return true
}

var errFailing = errors.New("otlptest: receiver is set to fail")

type traceService struct {
	collectortrace.UnimplementedTraceServiceServer
	r *Receiver
}

// Export implements the OTLP/gRPC trace service.
func (s traceService) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	if !s.r.accept(flattenSpans(req, ProtocolGRPC), nil) {
		return nil, status.Error(codes.Unavailable, errFailing.Error())
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

type metricsService struct {
	collectormetrics.UnimplementedMetricsServiceServer
	r *Receiver
}

// Export implements the OTLP/gRPC metrics service.
func (s metricsService) Export(_ context.Context, req *collectormetrics.ExportMetricsServiceRequest) (*collectormetrics.ExportMetricsServiceResponse, error) {
	if !s.r.accept(nil, flattenPoints(req, ProtocolGRPC)) {
		return nil, status.Error(codes.Unavailable, errFailing.Error())
	}
	return &collectormetrics.ExportMetricsServiceResponse{}, nil
}

func (r *Receiver) serveTraces(w http.ResponseWriter, req *http.Request) {
	var msg collectortrace.ExportTraceServiceRequest
	if !readProto(w, req, &msg) {
		return
	}
	if !r.accept(flattenSpans(&msg, ProtocolHTTPProtobuf), nil) {
		http.Error(w, errFailing.Error(), http.StatusServiceUnavailable)
		return
	}
	writeProto(w, &collectortrace.ExportTraceServiceResponse{})
}

func (r *Receiver) serveMetrics(w http.ResponseWriter, req *http.Request) {
	var msg collectormetrics.ExportMetricsServiceRequest
	if !readProto(w, req, &msg) {
		return
	}
	if !r.accept(nil, flattenPoints(&msg, ProtocolHTTPProtobuf)) {
		http.Error(w, errFailing.Error(), http.StatusServiceUnavailable)
		return
	}
	writeProto(w, &collectormetrics.ExportMetricsServiceResponse{})
}

// readProto decodes an OTLP/HTTP protobuf body, gzip-compressed or not, answering
// the request itself when it cannot.
func readProto(w http.ResponseWriter, req *http.Request, msg proto.Message) bool {
	if ct := req.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		http.Error(w, "otlptest: only application/x-protobuf is supported, got "+ct, http.StatusUnsupportedMediaType)
		return false
	}
	body := io.Reader(http.MaxBytesReader(w, req.Body, maxBody))
	switch enc := req.Header.Get("Content-Encoding"); enc {
	case "":
	case "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return false
		}
		defer func() { _ = zr.Close() }() // a gzip reader's Close only repeats a read error
		body = io.LimitReader(zr, maxBody)
	default:
		http.Error(w, "otlptest: unsupported Content-Encoding "+enc, http.StatusUnsupportedMediaType)
		return false
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return false
	}
	if err := proto.Unmarshal(buf.Bytes(), msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

func writeProto(w http.ResponseWriter, msg proto.Message) {
	b, err := proto.Marshal(msg)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(b)
}
