package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/config"
	"github.com/backplane/backplane/internal/dbtest"
	"github.com/backplane/backplane/internal/grpccodec"
	"github.com/backplane/backplane/internal/logging"
	"github.com/backplane/backplane/internal/mesh"
	"github.com/backplane/backplane/internal/plans/planstest"
	"github.com/backplane/backplane/internal/service"
	"github.com/backplane/backplane/internal/telemetry"
	"github.com/backplane/backplane/services"
)

// BenchmarkGRPCDoorInProcess: GetCurrentUser through the gRPC front door of a whole
// `backplane dev` run inside the benchmark's own process (the real auth service,
// default telemetry, the embedded Redis, access log formatted and discarded), so that
// -benchmem counts what one door call allocates end to end, the client's share
// included: allocation drives the GC share that keeps the door's p50 at 16 callers
// above 1.3× calling auth directly (bench/e2e). The one-caller figure is the count;
// the 16-caller one shows the same count under the contention bench/e2e measures.
func BenchmarkGRPCDoorInProcess(b *testing.B) {
	door, token := startDevInProcess(b)
	client := authv1.NewAuthServiceClient(door)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
	call := func() {
		if _, err := client.GetCurrentUser(ctx, &authv1.GetCurrentUserRequest{}); err != nil {
			b.Fatal(err)
		}
	}
	// The first calls may come before the edge's session mirror has the new session
	// (invalid credential) or while it is still being built (unavailable): both pass.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, err := client.GetCurrentUser(ctx, &authv1.GetCurrentUserRequest{})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal(err)
		}
		b.Logf("not yet: %v", err)
	}
	for range 200 { // warm: connections open, caches filled, leases taken
		call()
	}
	b.Run("callers=1", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			call()
		}
	})
	b.Run("callers=16", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0))) // RunParallel starts parallelism×GOMAXPROCS callers
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := client.GetCurrentUser(ctx, &authv1.GetCurrentUserRequest{}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// startDevInProcess runs `backplane dev` in this process, as cmd/backplane's run does,
// on a fresh database, signs a user up, and returns a connection to the gRPC front
// door and the user's access token.
func startDevInProcess(b *testing.B) (*grpc.ClientConn, string) {
	b.Helper()
	grpccodec.Register()
	addrs := make([]string, 3)
	for i := range addrs {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		addrs[i] = l.Addr().String()
		_ = l.Close()
	}
	// The built-in catalogue with every plan's rate limit and API-call quota lifted, as
	// bench/e2e runs it: the limiter and the usage counting still run on every call.
	catalog, err := planstest.LiftedCatalog("../internal/plans/default.yaml", b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	env := map[string]string{
		"BACKPLANE_DATABASE_URL":             dbtest.NewDatabase(b),
		"BACKPLANE_HTTP_ADDR":                addrs[0],
		"BACKPLANE_GRPC_ADDR":                addrs[1],
		"BACKPLANE_ADMIN_ADDR":               addrs[2],
		"BACKPLANE_DATA_DIR":                 b.TempDir(),
		"BACKPLANE_SIGNUP_MODE":              "instant",
		"BACKPLANE_RATE_LIMIT_AUTHENTICATED": "100000/s",
		"BACKPLANE_CATALOG_FILE":             catalog,
	}
	getenv := func(k string) string { return env[k] }
	defs := services.All()
	cfg, err := config.Load(config.Dev, getenv, service.Names(defs)...)
	if err != nil {
		b.Fatal(err)
	}
	loaded, err := service.Load(getenv, defs...)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	log := logging.New(io.Discard, logging.Options{Level: cfg.LogLevel, Format: cfg.LogFormat})
	tel, err := telemetry.New(ctx, telemetry.Config{Pieces: append(service.Names(defs), mesh.Gateway), ServiceName: "backplane", Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	tel.SetGlobal()
	done := make(chan error, 1)
	go func() { done <- mesh.Dev(ctx, cfg, log, tel, loaded, mesh.DevOptions{}) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			b.Error(err)
		}
		_ = tel.Shutdown(context.Background())
	})

	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get("http://" + addrs[2] + "/readyz") //nolint:noctx // a local probe
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-done:
			b.Fatalf("backplane dev stopped: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			b.Fatal("backplane dev did not become ready")
		}
		time.Sleep(50 * time.Millisecond)
	}

	body, _ := json.Marshal(map[string]string{
		"email": fmt.Sprintf("door+%d@example.com", time.Now().UnixNano()), "password": "correct horse battery", "displayName": "Door",
	})
	resp, err := http.Post("http://"+addrs[0]+"/v1/auth/signup", "application/json", bytes.NewReader(body)) //nolint:noctx // set-up
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var signedUp struct {
		AccessToken string `json:"accessToken"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&signedUp); err != nil || signedUp.AccessToken == "" {
		b.Fatalf("signup: %s: %v", resp.Status, err)
	}
	conn, err := grpc.NewClient(addrs[1], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = conn.Close() })
	return conn, signedUp.AccessToken
}
