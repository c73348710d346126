package mesh

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/backplane/backplane/internal/grpcserver"
	"github.com/backplane/backplane/internal/jobs"
	"github.com/backplane/backplane/internal/validation"
)

// Process runs servers until it is told to stop, then stops them in reverse order of
// starting, so that the front doors close before the services behind them.
type Process struct {
	log       *slog.Logger
	tel       Telemetry
	validator *validation.Validator

	mu    sync.Mutex
	stops []namedStop
	// grpcServers are drained together as shutdown begins (Shutdown).
	grpcServers []*grpcserver.Server
	checks      map[string]func(context.Context) error
	reports     map[string]func(context.Context) error
	errc        chan error
	stopping    atomic.Bool
	// started is set once everything the process serves has started: until then the
	// admin port answers, but /readyz says "starting", so no load balancer sends traffic
	// to a process whose services and checks are still being set up.
	started atomic.Bool
	// jobs are the started services' job clients, and jobsUI their River UI.
	jobs   []*jobs.Client
	jobsUI atomic.Pointer[jobs.UI]
	// profiling serves Go's profiles on the admin port (BACKPLANE_PPROF).
	profiling bool
}

type namedStop struct {
	name string
	stop func(context.Context) error
	// server marks the stop of a server: servers share the first half of the shutdown
	// budget between them, so that whatever stops after them (job workers recording the
	// send they started) keeps at least the second half.
	server bool
}

// NewProcess prepares a process; nothing runs until a Start method is called.
func NewProcess(log *slog.Logger, tel Telemetry) (*Process, error) {
	v, err := validation.New()
	if err != nil {
		return nil, fmt.Errorf("build validator: %w", err)
	}
	return &Process{
		log:       log,
		tel:       tel,
		validator: v,
		checks:    map[string]func(context.Context) error{},
		reports:   map[string]func(context.Context) error{},
		errc:      make(chan error, 16),
	}, nil
}

// OnStop registers f to run at shutdown, before everything registered earlier.
func (p *Process) OnStop(name string, f func(context.Context) error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stops = append(p.stops, namedStop{name: name, stop: f})
}

// onStopServer registers the stop of a server, which runs within the servers' share of
// the shutdown budget.
func (p *Process) onStopServer(name string, f func(context.Context) error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stops = append(p.stops, namedStop{name: name, stop: f, server: true})
}

// AddCheck registers a readiness check; /readyz fails while any check fails.
func (p *Process) AddCheck(name string, f func(context.Context) error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.checks[name] = f
}

// AddReport registers a condition /readyz shows as degraded while it fails, without
// turning the process unready.
func (p *Process) AddReport(name string, f func(context.Context) error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reports[name] = f
}

// ServerConfig is the gRPC server configuration every server of this process shares,
// reporting as piece.
func (p *Process) ServerConfig(piece string) grpcserver.Config {
	pv := p.providers(piece)
	return grpcserver.Config{
		Logger:         p.log,
		TracerProvider: pv.TracerProvider(),
		MeterProvider:  pv.MeterProvider(),
		Propagator:     pv.Propagator(),
		Validator:      p.validator,
	}
}

// serve runs a blocking serve function; an unexpected exit stops the process.
func (p *Process) serve(name string, serve func() error) {
	go func() {
		if err := serve(); err != nil && !p.stopping.Load() {
			p.errc <- fmt.Errorf("%s: %w", name, err)
		}
	}()
}

// ServeGRPC serves srv on lis and shuts it down gracefully on stop.
func (p *Process) ServeGRPC(name string, srv *grpcserver.Server, lis net.Listener) {
	p.serve(name, func() error { return srv.Serve(lis) })
	p.mu.Lock()
	p.grpcServers = append(p.grpcServers, srv)
	p.mu.Unlock()
	p.onStopServer(name, func(ctx context.Context) error {
		srv.Shutdown(ctx)
		return nil
	})
	p.log.Info("grpc server listening", "server", name, "addr", lis.Addr().String())
}

// ServeHTTP serves h on lis with conservative timeouts, over TLS (with HTTP/2 by ALPN)
// when tlsConfig is not nil, traced and measured as piece's unless piece is empty.
// There is no write timeout: server streams (live notifications, downloads) rightly
// stay open; idle and read limits still apply.
func (p *Process) ServeHTTP(name, piece string, h http.Handler, lis net.Listener, tlsConfig *tls.Config) {
	if piece != "" {
		h = instrumentHTTP(h, name, p.providers(piece))
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		TLSConfig:         tlsConfig,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
	}
	p.serve(name, func() error {
		var err error
		if tlsConfig != nil {
			err = srv.ServeTLS(lis, "", "")
		} else {
			err = srv.Serve(lis)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	p.onStopServer(name, srv.Shutdown)
	p.log.Info("http server listening", "server", name, "addr", lis.Addr().String())
}

// MarkStarted says that everything the process serves has started and registered its
// readiness checks; from then on /readyz follows them. Wait calls it.
func (p *Process) MarkStarted() { p.started.Store(true) }

// Wait blocks until ctx is done (a signal) or a server fails, then shuts down within
// timeout. It returns the server failure, if that is what ended the process.
func (p *Process) Wait(ctx context.Context, timeout time.Duration) error {
	p.MarkStarted()
	var cause error
	select {
	case <-ctx.Done():
		p.log.InfoContext(ctx, "shutting down", "timeout", timeout.String())
	case cause = <-p.errc:
		p.log.ErrorContext(ctx, "server failed; shutting down", "error", cause.Error())
	}
	p.Shutdown(ctx, timeout)
	return cause
}

// Shutdown stops everything, most recently started first, within timeout in total.
// It runs once ctx is cancelled, usually, so it keeps only ctx's values.
//
// First every gRPC server drains at once: open server streams (live notifications)
// end with UNAVAILABLE, on which clients reconnect elsewhere, since a stream has no end
// of its own and would hold its server, and the front door before it, for the whole
// budget. Then each step stops with a budget of its own: the servers, letting in-flight
// calls finish, within the first half of timeout together; every later step (job
// workers finishing and recording what they started, then the clients and pools) within
// what is left of the whole, so no server can spend the workers' time.
func (p *Process) Shutdown(ctx context.Context, timeout time.Duration) {
	p.stopping.Store(true)
	begin := time.Now()
	ctx = context.WithoutCancel(ctx)
	p.mu.Lock()
	stops := slices.Clone(p.stops)
	p.stops = nil
	servers := slices.Clone(p.grpcServers)
	p.grpcServers = nil
	p.mu.Unlock()
	if len(stops) == 0 {
		return
	}
	streams := 0
	for _, srv := range servers {
		streams += srv.Drain()
	}
	whole, cancelWhole := context.WithDeadline(ctx, begin.Add(timeout))
	defer cancelWhole()
	servering, cancelServers := context.WithDeadline(whole, begin.Add(timeout/2))
	defer cancelServers()
	for _, s := range slices.Backward(stops) {
		stepCtx := whole
		if s.server {
			stepCtx = servering
		}
		if err := s.stop(stepCtx); err != nil {
			p.log.WarnContext(ctx, "stop failed", "component", s.name, "error", err.Error())
		}
	}
	p.log.InfoContext(ctx, "stopped", "took", time.Since(begin).Round(time.Millisecond).String(), "streams_ended", streams)
}
