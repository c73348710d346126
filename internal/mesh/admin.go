package mesh

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/pprof"
	"slices"
	"sync"
	"time"

	"github.com/backplane/backplane/internal/jobs"
	"github.com/backplane/backplane/internal/telemetry"
)

// AdminHandler serves /healthz (the process is alive), /readyz (it can do useful work:
// every check passes and it is not shutting down), /metrics (Prometheus) and /jobs, the
// River UI of every service this process runs that has jobs: an index at /jobs and
// each service's queues at /jobs/<service>/. The admin port asks for no credentials,
// and the River UI lets whoever reaches it retry, cancel and delete jobs: it must be
// reachable from inside the deployment only.
//
// With profiling on (SetProfiling, BACKPLANE_PPROF) it also serves Go's runtime profiles
// at /debug/pprof/, for measuring the process under load; they reveal the code's shape
// and can cost CPU while they run, so they are off by default.
//
// Nothing on the admin port is traced, nor the checks /readyz runs against PostgreSQL,
// Redis and the other services: probes and scrapes arrive every few seconds and say
// nothing about the product.
func (p *Process) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", p.ready)
	mux.Handle("GET /metrics", p.tel.MetricsHandler())
	mux.HandleFunc(jobsPrefix, p.serveJobs)
	mux.HandleFunc(jobsPrefix+"/", p.serveJobs)
	if p.profiling {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return telemetry.Untraced(mux)
}

// SetProfiling makes AdminHandler serve /debug/pprof/ (BACKPLANE_PPROF); call it before
// AdminHandler.
func (p *Process) SetProfiling(on bool) { p.profiling = on }

// jobsPrefix is where the admin port serves the River UI.
const jobsPrefix = "/jobs"

// AddJobs shows a started service's jobs in the River UI on the admin port. The admin
// port serves from the process's start, before any service has started; the UI is
// rebuilt with each service added.
func (p *Process) AddJobs(client *jobs.Client) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	clients := append(slices.Clone(p.jobs), client)
	ui, err := jobs.NewUI(jobsPrefix, p.log, clients...)
	if err != nil {
		return err
	}
	p.jobs = clients
	p.jobsUI.Store(ui)
	return nil
}

// serveJobs serves the River UI, once a service with jobs has started.
func (p *Process) serveJobs(w http.ResponseWriter, r *http.Request) {
	ui := p.jobsUI.Load()
	if ui == nil {
		http.Error(w, "this process runs no service with jobs", http.StatusNotFound)
		return
	}
	ui.ServeHTTP(w, r)
}

func (p *Process) ready(w http.ResponseWriter, r *http.Request) {
	if p.stopping.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "shutting down"})
		return
	}
	if !p.started.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "starting"})
		return
	}
	p.mu.Lock()
	checks, reports := maps.Clone(p.checks), maps.Clone(p.reports)
	p.mu.Unlock()

	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	failures, degraded := runChecks(ctx, checks), runChecks(ctx, reports)
	body := map[string]any{"checks": slices.Sorted(maps.Keys(checks))}
	if len(degraded) > 0 {
		body["degraded"] = degraded
	}
	if len(failures) > 0 {
		body["status"], body["failing"] = "not ready", failures
		writeJSON(w, http.StatusServiceUnavailable, body)
		return
	}
	body["status"] = "ready"
	writeJSON(w, http.StatusOK, body)
}

// runChecks runs checks concurrently and returns the failures by name.
func runChecks(ctx context.Context, checks map[string]func(context.Context) error) map[string]string {
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		failures = map[string]string{}
	)
	for name, check := range checks {
		wg.Go(func() {
			if err := check(ctx); err != nil {
				mu.Lock()
				failures[name] = err.Error()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return failures
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
