package gateway

import (
	_ "embed"
	"net/http"
)

// openAPISpec is the merged OpenAPI document generated from the protos.
//
//go:embed openapi/backplane.swagger.json
var openAPISpec []byte

// docsPage renders openAPISpec in the browser without anything from a CDN.
//
//go:embed docs.html
var docsPage []byte

// docsHandler serves GET /openapi.json and GET /docs.
func docsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(openAPISpec)
	})
	mux.HandleFunc("GET /docs", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'")
		_, _ = w.Write(docsPage)
	})
	return mux
}
