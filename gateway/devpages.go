package gateway

import (
	_ "embed"
	"net/http"
)

// The pages that emailed links open (BACKPLANE_PUBLIC_URL/verify-email?token=...,
// /reset-password?token=...) belong to the product, not to Backplane. So that those
// flows can be finished in a browser before the product has its pages, `backplane dev`
// serves minimal ones that call the REST API as the product's would. Serve mode never
// does.
var (
	//go:embed devpages/page.html
	devPage []byte
	//go:embed devpages/pages.js
	devPagesScript []byte
)

// devPagesCSP lets the page run its own script file and call this origin's API, and
// nothing else.
const devPagesCSP = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// mountDevPages serves the pages on mux.
func mountDevPages(mux *http.ServeMux) {
	page := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", devPagesCSP)
		// The token is in the URL: keep the page out of caches.
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(devPage)
	}
	mux.HandleFunc("GET /verify-email", page)
	mux.HandleFunc("GET /reset-password", page)
	mux.HandleFunc("GET /dev/pages.js", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		_, _ = w.Write(devPagesScript)
	})
}
