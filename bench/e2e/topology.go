package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/backplane/backplane/internal/plans/planstest"
)

// serveServices are the pieces of `backplane serve` besides the gateway, each a process.
var serveServices = []string{"auth", "notification", "asset", "subscription", "usage"}

// serveMesh is Backplane in serve topology: the gateway and every service as processes
// of their own, calling each other over loopback gRPC, with the default settings of
// serve (no mutual TLS unless configured).
type serveMesh struct {
	pieces []*process
	// names are the pieces' names, in pieces' order.
	names []string
	http  string
	// gatewayAdmin is the gateway's admin port, which serves /debug/pprof/ for
	// -serve-cpuprofile.
	gatewayAdmin string
}

func (m *serveMesh) stop() {
	for _, p := range m.pieces {
		p.stop()
	}
}

// startServe migrates a fresh database with `backplane migrate`, then starts every
// service and the gateway of bin with `backplane serve`, as the Helm chart deploys them,
// on the Redis at redisURL.
func startServe(ctx context.Context, o options, bin, redisURL, dataDir, databaseURL string) (*serveMesh, error) {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return nil, err
	}
	migrate := exec.CommandContext(ctx, bin, "migrate")
	migrate.Env = append(os.Environ(), "BACKPLANE_DATABASE_URL="+databaseURL)
	if out, err := migrate.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("backplane migrate: %w\n%s", err, out)
	}
	catalog, err := planstest.LiftedCatalog(o.catalog, dataDir)
	if err != nil {
		return nil, err
	}
	common := []string{
		"BACKPLANE_MIGRATE_ON_START=false",
		"BACKPLANE_DATABASE_URL=" + databaseURL,
		"BACKPLANE_REDIS_URL=" + redisURL,
		"BACKPLANE_SERVICE_TOKEN_SECRET=" + serviceSecret,
		"BACKPLANE_KEY_ENCRYPTION_KEY=" + base64.StdEncoding.EncodeToString([]byte("bench-e2e-key-encryption-key-32b")),
		"BACKPLANE_DATA_DIR=" + dataDir,
		"BACKPLANE_RATE_LIMIT_AUTHENTICATED=" + o.rateLimit,
		"BACKPLANE_CATALOG_FILE=" + catalog,
		// The benchmark's account is signed in at sign-up, without the emailed link.
		"BACKPLANE_SIGNUP_MODE=instant",
	}
	addrs := map[string]string{}
	for _, s := range serveServices {
		if addrs[s], err = freeAddr(ctx); err != nil {
			return nil, err
		}
		common = append(common, fmt.Sprintf("BACKPLANE_%s_ADDR=%s", strings.ToUpper(s), addrs[s]))
	}
	m := &serveMesh{}
	if m.http, err = freeAddr(ctx); err != nil {
		return nil, err
	}
	common = append(common, "BACKPLANE_PUBLIC_URL=http://"+m.http)
	// Every piece starts before any is waited for: a service is ready only once the
	// services it calls are.
	var admins []string
	for _, piece := range append(serveServices, "gateway") {
		admin, err := freeAddr(ctx)
		if err != nil {
			m.stop()
			return nil, err
		}
		env := append(common, "BACKPLANE_ADMIN_ADDR="+admin)
		if piece == "gateway" {
			grpcAddr, err := freeAddr(ctx)
			if err != nil {
				m.stop()
				return nil, err
			}
			// Profiles on the admin port, as dev has them: the gateway is where serve
			// spends its CPU per request.
			env = append(env, "BACKPLANE_HTTP_ADDR="+m.http, "BACKPLANE_GRPC_ADDR="+grpcAddr, "BACKPLANE_PPROF=true")
			m.gatewayAdmin = admin
		} else {
			env = append(env, "BACKPLANE_GRPC_ADDR="+addrs[piece])
		}
		p, err := start(ctx, "backplane serve "+piece, env, bin, "serve", piece)
		if err != nil {
			m.stop()
			return nil, err
		}
		m.pieces = append(m.pieces, p)
		m.names = append(m.names, piece)
		admins = append(admins, admin)
	}
	for i, p := range m.pieces {
		if err := p.waitOK(ctx, "http://"+admins[i]+"/readyz"); err != nil {
			m.stop()
			return nil, err
		}
	}
	return m, nil
}

// serviceToken mints a service token as internal/authn's HMACServiceTokens does
// ("v1.<service>.<unix expiry>.<base64url HMAC-SHA256>"), for calling a service directly
// as the edge does. The harness cannot import internal/authn from its own module.
func serviceToken(service string) string {
	payload := "v1." + service + "." + strconv.FormatInt(time.Now().Add(time.Minute).Unix(), 10)
	m := hmac.New(sha256.New, []byte(serviceSecret))
	m.Write([]byte(payload))
	return payload + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// serviceCredentials attaches a fresh service token to every call.
type serviceCredentials struct{ service string }

func (c serviceCredentials) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"x-backplane-service-token": serviceToken(c.service)}, nil
}

func (serviceCredentials) RequireTransportSecurity() bool { return true }

// dialDirect connects to a service of a `backplane dev` as its edge does: over mutual
// TLS with dev's throwaway certificates (the caller "dev"), every call carrying a
// service token.
func dialDirect(dataDir, addr string) (*grpc.ClientConn, error) {
	dir := filepath.Join(dataDir, "mtls")
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "dev.crt"), filepath.Join(dir, "dev.key"))
	if err != nil {
		return nil, err
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt")) //nolint:gosec // dev's own data dir, made by the harness
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("dev's ca.crt holds no certificate")
	}
	tc := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		// The servers' certificates name SPIFFE ids, not hosts: the chain is verified
		// against dev's CA below instead of by host name.
		InsecureSkipVerify: true, //nolint:gosec // VerifyConnection checks the chain
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("no server certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
			return err
		},
	}
	return grpc.NewClient(addr,
		grpc.WithTransportCredentials(credentials.NewTLS(tc)),
		grpc.WithPerRPCCredentials(serviceCredentials{service: "dev"}))
}
