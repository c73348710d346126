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
	"slices"
	"strings"
	"syscall"

	"github.com/backplane/backplane/internal/config"
	"github.com/backplane/backplane/internal/grpccodec"
	"github.com/backplane/backplane/internal/logging"
	"github.com/backplane/backplane/internal/mesh"
	"github.com/backplane/backplane/internal/service"
	"github.com/backplane/backplane/internal/telemetry"
	"github.com/backplane/backplane/services"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// usageText is the command's help, naming every piece of the mesh.
func usageText(defs []service.Definition) string {
	pieces := strings.Join(append([]string{mesh.Gateway}, service.Names(defs)...), ", ")
	return `backplane: accounts, billing, files, metering and notifications for your product.

Usage:
  backplane dev [--reset] [--loopback]
                                 run the whole mesh in one process (embedded fallbacks);
                                 --reset first drops the dev database's schemas and mailbox;
                                 --loopback has the edge call the services over loopback
                                 gRPC with mutual TLS, as serve does, not in process
  backplane serve <piece>        run one piece: ` + pieces + `
  backplane migrate [service...] apply database migrations (all services when none named)
  backplane stripe sync          create or update the catalogue's Stripe products and prices
  backplane version              print the version

Configuration comes from BACKPLANE_* environment variables; see the README.
`
}

func main() {
	// The file codec, which the edge's download calls ask for and the asset service then
	// answers with; registered before any connection or server exists: gRPC's codec
	// registry is not safe to change while in use.
	grpccodec.Register()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	defs := services.All()
	usage := usageText(defs)
	if len(args) == 0 {
		_, _ = fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "version":
		_, _ = fmt.Fprintln(stdout, "backplane", version)
		return 0
	case "help", "-h", "--help":
		_, _ = fmt.Fprint(stdout, usage)
		return 0
	case "stripe":
		return runStripe(ctx, rest, getenv, stdout, stderr)
	case "dev", "serve", "migrate":
	default:
		_, _ = fmt.Fprintf(stderr, "backplane: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	var devOpts mesh.DevOptions
	if cmd == "dev" {
		for _, a := range rest {
			switch a {
			case "--reset":
				devOpts.Reset = true
			case "--loopback":
				devOpts.Loopback = true
			default:
				_, _ = fmt.Fprintf(stderr, "backplane dev: unknown argument %q\n\n%s", a, usage)
				return 2
			}
		}
	}
	if cmd == "serve" && len(rest) != 1 {
		_, _ = fmt.Fprintf(stderr, "backplane serve: name exactly one piece\n\n%s", usage)
		return 2
	}

	// The services this command starts, whose configuration is read now; migrate
	// starts none, it only needs their migrations.
	var start, migrate []service.Definition
	switch cmd {
	case "dev":
		start = defs
	case "serve":
		if rest[0] != mesh.Gateway {
			i := slices.IndexFunc(defs, func(d service.Definition) bool { return d.Name == rest[0] })
			if i < 0 {
				_, _ = fmt.Fprintf(stderr, "backplane serve: unknown piece %q\n\n%s", rest[0], usage)
				return 2
			}
			start = defs[i : i+1]
		}
	case "migrate":
		migrate = defs
		if len(rest) > 0 {
			migrate = nil
			for _, name := range rest {
				i := slices.IndexFunc(defs, func(d service.Definition) bool { return d.Name == name })
				if i < 0 {
					_, _ = fmt.Fprintf(stderr, "backplane migrate: unknown service %q: want one of %v\n", name, service.Names(defs))
					return 2
				}
				migrate = append(migrate, defs[i])
			}
		}
	}

	// Every setting, the process's and each started service's, is read and checked
	// before anything is opened: a bad one stops the process here, naming the variable.
	mode := config.Serve
	if cmd == "dev" {
		mode = config.Dev
	}
	cfg, cfgErr := config.Load(mode, getenv, service.Names(defs)...)
	loaded, svcErr := service.Load(getenv, start...)
	var required error
	if cmd == "serve" {
		// Serve mode never falls back to embedded stand-ins: what it needs must be set.
		required = errors.Join(mesh.CheckServe(cfg, defs, rest[0]), service.CheckServe(getenv, start...))
	}
	if err := errors.Join(cfgErr, svcErr, required); err != nil {
		_, _ = fmt.Fprintf(stderr, "backplane: invalid configuration:\n%v\n", err)
		return 2
	}
	// Lines are gathered and written every 100 ms, not one system call each: under load
	// the access log writes a line per request. Warnings and errors are written at once,
	// and the last lines when run returns.
	logOut := logging.NewBuffer(stderr, logging.BufferOptions{})
	defer func() { _ = logOut.Close() }()
	log := logging.New(logOut, logging.Options{Level: cfg.LogLevel, Format: cfg.LogFormat})

	tel, err := telemetry.New(ctx, telemetry.Config{
		Pieces:          telemetryPieces(cmd, rest, start),
		ServiceName:     "backplane",
		ServiceVersion:  version,
		OTLPEndpoint:    cfg.OTLPEndpoint,
		ShutdownTimeout: cfg.ShutdownTimeout,
		Logger:          log,
	})
	if err != nil {
		log.ErrorContext(ctx, "telemetry setup failed", "error", err.Error())
		return 1
	}
	// Libraries that only read the global providers (and the SDK's error reporting)
	// see ours; everything of our own receives them explicitly.
	tel.SetGlobal()
	defer func() {
		if err := tel.Shutdown(context.WithoutCancel(ctx)); err != nil {
			log.WarnContext(ctx, "telemetry shutdown", "error", err.Error())
		}
	}()

	// The final telemetry flush has its own share of BACKPLANE_SHUTDOWN_TIMEOUT, after
	// the servers have drained within the rest.
	if cfg.ShutdownTimeout > 0 {
		cfg.ShutdownTimeout -= telemetry.FlushBudget(cfg.ShutdownTimeout)
	}
	switch {
	case cmd == "dev":
		err = mesh.Dev(ctx, cfg, log, tel, loaded, devOpts)
	case cmd == "serve" && rest[0] == mesh.Gateway:
		err = mesh.ServeGateway(ctx, cfg, log, tel, defs)
	case cmd == "serve":
		err = mesh.ServeService(ctx, cfg, log, tel, loaded[0], defs)
	case cmd == "migrate":
		err = mesh.Migrate(ctx, cfg, log, tel, migrate)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		log.ErrorContext(ctx, "backplane failed", "command", cmd, "error", err.Error())
		return 1
	}
	return 0
}
