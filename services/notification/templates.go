package notification

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"net/url"
	"path"
	"strings"
	texttemplate "text/template"
)

//go:embed templates/*.tmpl
var templateFiles embed.FS

// errUnknownTemplate is returned for a template name the binary does not carry.
var errUnknownTemplate = errors.New("unknown template")

// templateData is what a template sees.
type templateData struct {
	// Data holds the sender's values; a missing key a template uses directly fails the
	// rendering, so a sender's mistake is an error at Send rather than an empty link.
	Data map[string]string
	// UnsubscribeURL is the one-click link; empty for security notifications.
	UnsubscribeURL string
}

// rendered is a notification ready to store and send.
type rendered struct {
	subject string
	text    string
	html    string
}

// catalog holds the templates embedded in the binary. Each file NAME.tmpl defines
// "subject" and "text", rendered with text/template, and "html", rendered with
// html/template so that the sender's values are escaped where they land.
type catalog struct {
	text map[string]*texttemplate.Template
	html map[string]*htmltemplate.Template
}

// newCatalog parses the embedded templates. Links are built with the "link" function,
// from publicURL, so that no template hard-codes where the product is served.
func newCatalog(publicURL string) (*catalog, error) {
	base, err := url.Parse(strings.TrimRight(publicURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("public URL: %w", err)
	}
	funcs := map[string]any{"link": linkFunc(base), "ours": oursFunc(base)}
	c := &catalog{text: map[string]*texttemplate.Template{}, html: map[string]*htmltemplate.Template{}}
	files, err := fs.Glob(templateFiles, "templates/*.tmpl")
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".tmpl")
		src, err := templateFiles.ReadFile(f)
		if err != nil {
			return nil, err
		}
		tt, err := texttemplate.New(name).Funcs(funcs).Option("missingkey=error").Parse(string(src))
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", name, err)
		}
		ht, err := htmltemplate.New(name).Funcs(funcs).Option("missingkey=error").Parse(string(src))
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", name, err)
		}
		c.text[name], c.html[name] = tt, ht
	}
	return c, nil
}

// linkFunc returns the "link" template function: link PATH [KEY VALUE]... is the public
// URL with PATH appended and the pairs as its query.
func linkFunc(base *url.URL) func(string, ...string) (string, error) {
	return func(p string, pairs ...string) (string, error) {
		if len(pairs)%2 != 0 {
			return "", errors.New("link needs key and value pairs")
		}
		u := *base
		u.Path = strings.TrimRight(base.Path, "/") + "/" + strings.TrimLeft(p, "/")
		q := url.Values{}
		for i := 0; i < len(pairs); i += 2 {
			q.Set(pairs[i], pairs[i+1])
		}
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
}

// oursFunc returns the "ours" template function, which passes a link the sender built
// only if it points under the public URL: an email from us never links elsewhere, even
// if a calling service is misconfigured or compromised.
func oursFunc(base *url.URL) func(string) (string, error) {
	prefix := strings.TrimRight(base.String(), "/") + "/"
	return func(link string) (string, error) {
		if !strings.HasPrefix(link, prefix) {
			// The link is left out of the error: it may carry a single-use token, and
			// errors are logged.
			return "", fmt.Errorf("a link in data is not under %s", prefix)
		}
		return link, nil
	}
}

// has reports whether the binary carries the named template.
func (c *catalog) has(name string) bool { return c.text[name] != nil }

// render renders the named template with d.
func (c *catalog) render(name string, d templateData) (rendered, error) {
	tt, ht := c.text[name], c.html[name]
	if tt == nil {
		return rendered{}, errUnknownTemplate
	}
	if d.Data == nil {
		d.Data = map[string]string{}
	}
	var subject, text, html bytes.Buffer
	if err := tt.ExecuteTemplate(&subject, "subject", d); err != nil {
		return rendered{}, err
	}
	if err := tt.ExecuteTemplate(&text, "text", d); err != nil {
		return rendered{}, err
	}
	if err := ht.ExecuteTemplate(&html, "html", d); err != nil {
		return rendered{}, err
	}
	// A header cannot hold a line break; one in a sender's value would otherwise let it
	// add headers of its own.
	s := strings.Join(strings.Fields(subject.String()), " ")
	return rendered{subject: s, text: strings.TrimSpace(text.String()) + "\n", html: strings.TrimSpace(html.String()) + "\n"}, nil
}
