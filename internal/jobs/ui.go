package jobs

import (
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"riverqueue.com/riverui"
)

// UI serves the River UI of several services under one path prefix: the UI of the jobs
// of service s at <prefix>/s/, and at <prefix>/ a page linking to each. River UI shows
// the jobs of one River client, which is one schema, so each service gets its own.
//
// Operators can cancel, retry and delete jobs and pause queues through it, and it asks
// for no credentials: it belongs on the admin port, which must be reachable from inside
// the deployment only. Job arguments are hidden from job lists until asked for, as they
// may hold personal data such as email addresses.
//
// River UI's background count caches are not started: counts are queried when a page
// asks for them, so an idle UI costs the database nothing.
type UI struct {
	mux *http.ServeMux
}

var _ http.Handler = (*UI)(nil)

// NewUI builds the UI of clients under prefix, such as "/jobs". logger receives
// River UI's errors; nil discards them.
func NewUI(prefix string, logger *slog.Logger, clients ...*Client) (*UI, error) {
	prefix = strings.TrimRight(prefix, "/")
	if !strings.HasPrefix(prefix, "/") {
		return nil, fmt.Errorf("jobs: UI prefix %q must start with /", prefix)
	}
	if len(clients) == 0 {
		return nil, errors.New("jobs: the UI needs at least one client")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	services := make([]string, 0, len(clients))
	for _, c := range clients {
		if slices.Contains(services, c.service) {
			return nil, fmt.Errorf("jobs: UI: service %s is given twice", c.service)
		}
		services = append(services, c.service)
		h, err := riverui.NewHandler(&riverui.HandlerOpts{
			Endpoints:                riverui.NewEndpoints(c.river, nil),
			JobListHideArgsByDefault: true,
			Logger:                   logger.With("jobs_schema", c.schema),
			Prefix:                   prefix + "/" + c.service,
		})
		if err != nil {
			return nil, fmt.Errorf("jobs: UI of %s: %w", c.schema, err)
		}
		mux.Handle(prefix+"/"+c.service+"/", h)
		// River UI redirects its bare prefix to the prefix with a slash itself.
		mux.Handle(prefix+"/"+c.service, h)
	}
	slices.Sort(services)
	index := indexPage{Prefix: prefix, Services: services}
	mux.HandleFunc("GET "+prefix+"/{$}", index.serve)
	mux.Handle("GET "+prefix, http.RedirectHandler(prefix+"/", http.StatusMovedPermanently))
	return &UI{mux: mux}, nil
}

// ServeHTTP implements http.Handler. Mount the UI at its prefix and below, e.g.
// mux.Handle("/jobs/", ui) and mux.Handle("/jobs", ui).
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) { u.mux.ServeHTTP(w, r) }

// indexPage lists the services whose jobs the UI shows.
type indexPage struct {
	Prefix   string
	Services []string
}

var indexTemplate = template.Must(template.New("index").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Backplane jobs</title></head>
<body>
<h1>Backplane jobs</h1>
<p>Each service keeps its jobs in a River schema of its own:</p>
<ul>
{{- range .Services}}
<li><a href="{{$.Prefix}}/{{.}}/">{{.}}</a></li>
{{- end}}
</ul>
</body>
</html>
`))

func (p indexPage) serve(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = indexTemplate.Execute(w, p)
}
