package faulttest

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	toxiclient "github.com/Shopify/toxiproxy/v2/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Toxiproxy is a Toxiproxy server running inside the test process, driven through its
// own Go client over its HTTP API, as an operator's tooling would drive the binary.
type Toxiproxy struct {
	client *toxiclient.Client
}

// StartToxiproxy starts a Toxiproxy server on a free loopback port; it and every proxy
// it holds stop when the test ends.
func StartToxiproxy(t testing.TB) *Toxiproxy {
	t.Helper()
	// The toxics log through zerolog's global logger at trace level, a line per packet;
	// the server's logger does not reach them.
	zerolog.SetGlobalLevel(zerolog.WarnLevel)
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	var lc net.ListenConfig
	lis, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("faulttest: listen for toxiproxy: %v", err)
	}
	api := &http.Server{Handler: server.Routes(), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- api.Serve(lis) }()
	t.Cleanup(func() {
		_ = api.Close()
		if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("faulttest: toxiproxy API: %v", err)
		}
		// Closes every proxy's listener and the connections through it.
		_ = server.Collection.Clear()
	})
	return &Toxiproxy{client: toxiclient.NewClient(lis.Addr().String())}
}

// Proxy is one link between the system under test and a store, through Toxiproxy.
type Proxy struct {
	*toxiclient.Proxy
}

// Proxy creates a link named name to upstream on a free loopback port (Listen).
func (tp *Toxiproxy) Proxy(t testing.TB, name, upstream string) *Proxy {
	t.Helper()
	p, err := tp.client.CreateProxy(name, "127.0.0.1:0", upstream)
	if err != nil {
		t.Fatalf("faulttest: create proxy %s: %v", name, err)
	}
	return &Proxy{Proxy: p}
}

// Toxic adds a toxic of a kind ("latency", "bandwidth", "timeout", "reset_peer",
// "slow_close", "limit_data", "slicer") to both directions of the link, and returns a
// function that removes it. See https://github.com/Shopify/toxiproxy#toxics for each
// kind's attributes.
func (p *Proxy) Toxic(t testing.TB, kind string, attrs toxiclient.Attributes) (remove func()) {
	t.Helper()
	names := []string{}
	for _, stream := range []string{"upstream", "downstream"} {
		name := kind + "_" + stream
		if _, err := p.AddToxic(name, kind, stream, 1, attrs); err != nil {
			t.Fatalf("faulttest: add %s to %s: %v", name, p.Name, err)
		}
		names = append(names, name)
	}
	return func() {
		t.Helper()
		for _, name := range names {
			if err := p.RemoveToxic(name); err != nil {
				t.Fatalf("faulttest: remove %s from %s: %v", name, p.Name, err)
			}
		}
	}
}

// Down closes the link's listener and every connection through it: new connections
// are refused, open ones are cut, as when a store's host goes away.
func (p *Proxy) Down(t testing.TB) {
	t.Helper()
	if err := p.Disable(); err != nil {
		t.Fatalf("faulttest: take %s down: %v", p.Name, err)
	}
}

// Up listens again on the same address.
func (p *Proxy) Up(t testing.TB) {
	t.Helper()
	if err := p.Enable(); err != nil {
		t.Fatalf("faulttest: bring %s up: %v", p.Name, err)
	}
}
