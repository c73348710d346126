// Command e2e measures the real product beside its baselines in one run: it starts the
// built bin/backplane in `backplane dev` with default settings and its own fresh
// database, a bare grpc-gateway → gRPC echo, and PocketBase v0.36.8 (each a process of
// its own), drives each with the same HTTP/1.1 load (keep-alive, a fixed number of
// connections, a fixed duration) and prints req/s, p50, p99 and the ratios. It lives in
// a module of its own so that PocketBase is pinned here and never in Backplane's.
//
// `make bench-e2e` runs it. It is not part of `make test`: it measures, it asserts
// nothing; load_test.go checks the load generator itself.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 {
		// The harness runs its baselines as processes of its own binary.
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		var err error
		switch os.Args[1] {
		case "echo":
			err = serveEcho(ctx)
		case "pocketbase":
			if len(os.Args) != 3 {
				err = fmt.Errorf("usage: e2e pocketbase <data dir>")
			} else {
				// PocketBase's Serve returns only on failure: a signal ends it here.
				errc := make(chan error, 1)
				go func() { errc <- servePocketBase(ctx, os.Args[2]) }()
				select {
				case err = <-errc:
				case <-ctx.Done():
				}
			}
		default:
			err = run(ctx)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
}

// options are the command line's.
type options struct {
	bin        string
	baseBin    string
	serve      bool
	serveRedis string
	baseRedis  string
	rounds     int
	cpuProfile string
	// grpcCPUProfile is the prefix of the two CPU profiles of dev at 16 gRPC callers:
	// through the front door (.door) and auth called directly (.direct).
	grpcCPUProfile string
	serveProf      string
	database       string
	redis          string
	rateLimit      string
	catalog        string
	conns          int
	duration       time.Duration
	warmup         time.Duration
}

func run(ctx context.Context) error {
	var o options
	fs := flag.NewFlagSet("e2e", flag.ContinueOnError)
	fs.StringVar(&o.bin, "bin", "../../bin/backplane", "the built backplane binary")
	fs.StringVar(&o.baseBin, "base-bin", "", "another backplane binary (say, the release before) measured beside -bin in the same run, as \"before\", in dev and (with -serve) in the serve topology")
	fs.BoolVar(&o.serve, "serve", true, "also measure the serve topology: the gateway and every service as processes of their own")
	fs.StringVar(&o.serveRedis, "serve-redis", "redis://127.0.0.1:6379/13", "BACKPLANE_REDIS_URL of the serve topology, which has no embedded Redis")
	fs.IntVar(&o.rounds, "rounds", 2, "rounds over the HTTP targets; each round's ratios are taken within it")
	fs.StringVar(&o.baseRedis, "serve-base-redis", "redis://127.0.0.1:6379/12", "BACKPLANE_REDIS_URL of the serve topology of -base-bin, apart from the other's")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of backplane dev under the last round's load to this file, and its allocations meanwhile to this file + \".allocs\"")
	fs.StringVar(&o.grpcCPUProfile, "grpc-cpuprofile", "", "write CPU profiles of backplane dev while 16 gRPC callers drive the front door (to this name + \".door\") and auth directly (+ \".direct\")")
	fs.StringVar(&o.serveProf, "serve-cpuprofile", "", "write a CPU profile of the serve topology's gateway under the last round's load to this file (and of -base-bin's to this file + \".before\")")
	fs.StringVar(&o.database, "postgres", "postgres://postgres@127.0.0.1:5432/postgres", "a PostgreSQL server where a fresh database is created for the run and dropped after")
	fs.StringVar(&o.redis, "redis", "", "BACKPLANE_REDIS_URL for backplane dev (empty: dev's default, embedded Redis)")
	fs.StringVar(&o.rateLimit, "rate-limit", "100000/s", "BACKPLANE_RATE_LIMIT_AUTHENTICATED for backplane dev: the limiter runs on every call, but one user at full load must not be refused")
	fs.StringVar(&o.catalog, "catalog", "../../internal/plans/default.yaml", "the plan catalogue, copied with its rate limits and API-call quotas lifted")
	fs.IntVar(&o.conns, "c", 32, "HTTP connections (and callers) per target")
	fs.DurationVar(&o.duration, "d", 10*time.Second, "measured duration per target")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured load before each measurement")
	args := os.Args[1:]
	if err := fs.Parse(args); err != nil {
		return err
	}
	return measure(ctx, o)
}
