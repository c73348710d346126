package gateway

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/backplane/backplane/gen/openapi"
)

// docsPage and docsScript render the OpenAPI document in the browser with nothing from a
// CDN. The script is a file of its own so that the page's Content-Security-Policy can
// forbid inline script.
var (
	//go:embed docs.html
	docsPage []byte
	//go:embed docs.js
	docsScript []byte
)

// docsHandler serves GET /openapi.json, the API reference at /docs (and /docs/), and
// the reference's script.
func docsHandler(publicURL string) (http.Handler, error) {
	spec, err := withServer(openapi.Document, publicURL)
	if err != nil {
		return nil, fmt.Errorf("gateway: OpenAPI document: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(spec)
	})
	page := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		_, _ = w.Write(docsPage)
	}
	mux.HandleFunc("GET /docs", page)
	mux.HandleFunc("GET /docs/{$}", page)
	mux.HandleFunc("GET /docs/docs.js", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(docsScript)
	})
	return mux, nil
}

// withServer returns the document with its servers replaced by the deployment's public
// URL, so that clients generated from the served document call this deployment. The
// other members are copied as they are, in their order.
func withServer(doc []byte, publicURL string) ([]byte, error) {
	if publicURL == "" {
		return doc, nil
	}
	servers, err := json.Marshal([]map[string]string{{"url": publicURL}})
	if err != nil {
		return nil, err
	}
	d := json.NewDecoder(bytes.NewReader(doc))
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	var out bytes.Buffer
	out.WriteString("{")
	wrote := false
	member := func(key string, value []byte) {
		if wrote {
			out.WriteByte(',')
		}
		wrote = true
		k, _ := json.Marshal(key)
		out.Write(k)
		out.WriteByte(':')
		out.Write(value)
	}
	replaced := false
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		var value json.RawMessage
		if err := d.Decode(&value); err != nil {
			return nil, err
		}
		if key == "servers" {
			value, replaced = servers, true
		}
		member(key, value)
	}
	if _, err := d.Token(); err != nil { // the closing brace
		return nil, err
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after the document")
	}
	if !replaced {
		member("servers", servers)
	}
	out.WriteString("}")
	var compact bytes.Buffer
	if err := json.Compact(&compact, out.Bytes()); err != nil {
		return nil, err
	}
	return compact.Bytes(), nil
}
