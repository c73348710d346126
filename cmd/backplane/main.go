// Command backplane runs Backplane: the whole mesh on a laptop (`backplane dev`), one
// piece of it in production (`backplane serve <piece>`), or its migrations.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/backplane/backplane/internal/config"
	"github.com/backplane/backplane/internal/logging"
	"github.com/backplane/backplane/internal/mesh"
	"github.com/backplane/backplane/internal/telemetry"
	"github.com/backplane/backplane/services/asset"
	"github.com/backplane/backplane/services/auth"
	"github.com/backplane/backplane/services/notification"
	"github.com/backplane/backplane/services/subscription"
	"github.com/backplane/backplane/services/usage"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usageText = `backplane: accounts, billing, files, metering and notifications for your product.

Usage:
  backplane dev                  run the whole mesh in one process (embedded fallbacks)
  backplane serve <piece>        run one piece: gateway, auth, subscription, asset, usage, notification
  backplane migrate [service...] apply database migrations (all services when none named)
  backplane version              print the version

Configuration comes from BACKPLANE_* environment variables; see the README.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// services lists the mesh's services, dependencies first.
func services() []mesh.Service {
	return []mesh.Service{
		notification.Service(),
		auth.Service(),
		subscription.Service(),
		usage.Service(),
		asset.Service(),
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "version":
		fmt.Fprintln(stdout, "backplane", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usageText)
		return 0
	case "dev", "serve", "migrate":
	default:
		fmt.Fprintf(stderr, "backplane: unknown command %q\n\n%s", cmd, usageText)
		return 2
	}
	if cmd == "serve" && len(rest) != 1 {
		fmt.Fprintf(stderr, "backplane serve: name exactly one piece\n\n%s", usageText)
		return 2
	}

	mode := config.Serve
	if cmd == "dev" {
		mode = config.Dev
	}
	var names []string
	for _, svc := range services() {
		names = append(names, svc.Name)
	}
	cfg, err := config.Load(mode, getenv, names...)
	if err != nil {
		fmt.Fprintf(stderr, "backplane: invalid configuration:\n%v\n", err)
		return 2
	}
	log := logging.New(stderr, logging.Options{Level: cfg.LogLevel, Format: cfg.LogFormat})

	serviceName := "backplane"
	if cmd == "serve" {
		serviceName = "backplane-" + rest[0]
	}
	tel, err := telemetry.New(ctx, telemetry.Config{
		ServiceName:    serviceName,
		ServiceVersion: version,
		OTLPEndpoint:   cfg.OTLPEndpoint,
		Logger:         log,
	})
	if err != nil {
		log.Error("telemetry setup failed", "error", err.Error())
		return 1
	}
	// Libraries that only read the global providers (and the SDK's error reporting)
	// see ours; everything of our own receives them explicitly.
	tel.SetGlobal()
	defer func() {
		if err := tel.Shutdown(context.WithoutCancel(ctx)); err != nil {
			log.Warn("telemetry shutdown", "error", err.Error())
		}
	}()

	switch cmd {
	case "dev":
		err = mesh.Dev(ctx, cfg, getenv, log, tel, services())
	case "serve":
		err = mesh.Serve(ctx, cfg, getenv, log, tel, services(), rest[0])
	case "migrate":
		err = mesh.Migrate(ctx, cfg, log, tel, services(), rest...)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Error("backplane "+cmd+" failed", "error", err.Error())
		return 1
	}
	return 0
}
