package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
)

// getCurrentUser returns a call of AuthService.GetCurrentUser on conn with a bearer token.
func getCurrentUser(conn *grpc.ClientConn, token string) func(context.Context) error {
	client := authv1.NewAuthServiceClient(conn)
	md := metadata.Pairs("authorization", "Bearer "+token)
	return func(ctx context.Context) error {
		_, err := client.GetCurrentUser(metadata.NewOutgoingContext(ctx, md), &authv1.GetCurrentUserRequest{})
		return err
	}
}

// grpcTarget is one gRPC endpoint called with GetCurrentUser.
type grpcTarget struct {
	name  string
	conn  *grpc.ClientConn
	token string
	// profile names the CPU profile of dev taken while 16 callers drive this target
	// (-grpc-cpuprofile), empty for none: the door's and auth's direct profiles come from
	// the same process, so their shares say what the door adds to each call.
	profile string
	admin   string
}

// measureGRPC compares the gRPC front door of backplane dev (the real auth service behind
// it) with auth called directly, as the edge calls it (mutual TLS with dev's
// certificates and a service token; the caller's access token verified in full), and
// with the bare gRPC echo, at 1 and 16 concurrent callers sharing one connection.
func measureGRPC(ctx context.Context, o options, dev, before *backplaneDev, echoAddr, token, beforeToken string) error {
	var targets []grpcTarget
	defer func() {
		for _, t := range targets {
			_ = t.conn.Close()
		}
	}()
	add := func(name string, conn *grpc.ClientConn, err error, token string) error {
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		targets = append(targets, grpcTarget{name: name, conn: conn, token: token})
		return nil
	}
	// profileLast has the target just added profiled into path, when -grpc-cpuprofile asks.
	profileLast := func(admin, suffix string) {
		if o.grpcCPUProfile != "" {
			targets[len(targets)-1].admin = admin
			targets[len(targets)-1].profile = o.grpcCPUProfile + suffix
		}
	}
	plain := grpc.WithTransportCredentials(insecure.NewCredentials())
	conn, err := grpc.NewClient(echoAddr, plain)
	if err := add("bare gRPC echo", conn, err, token); err != nil {
		return err
	}
	for _, d := range []struct {
		label string
		dev   *backplaneDev
		token string
	}{{"", dev, token}, {" (before)", before, beforeToken}} {
		if d.dev == nil {
			continue
		}
		conn, err := grpc.NewClient(d.dev.grpc, plain)
		if err := add("gRPC front door → auth"+d.label, conn, err, d.token); err != nil {
			return err
		}
		if d.dev == dev {
			profileLast(dev.admin, ".door")
		}
		addr, err := d.dev.listening("auth")
		if err != nil {
			return err
		}
		conn, err = dialDirect(d.dev.dataDir, addr)
		if err := add("auth called directly"+d.label, conn, err, d.token); err != nil {
			return err
		}
		if d.dev == dev {
			profileLast(dev.admin, ".direct")
		}
	}
	calls := make([]func(context.Context) error, len(targets))
	for i, t := range targets {
		calls[i] = getCurrentUser(t.conn, t.token)
		if err := calls[i](ctx); err != nil {
			return fmt.Errorf("%s: the first call failed: %w", t.name, err)
		}
	}
	d := o.duration / 2
	fmt.Printf("\n==> gRPC GetCurrentUser at 1 and 16 callers, %s warm-up, %s measured each\n", o.warmup/2, d)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	_, _ = fmt.Fprintln(w, "target\tcallers\tcalls/s\tp50\tp99\tfailed\t")
	p50 := map[string]float64{}
	var failures []string
	for _, callers := range []int{1, 16} {
		for i, t := range targets {
			Drive(ctx, callers, o.warmup/2, calls[i])
			var profile chan error
			if t.profile != "" && callers == 16 {
				profile = make(chan error, 1)
				go func() { profile <- fetchProfile(ctx, t.admin, "profile", d-time.Second, t.profile) }()
			}
			r := Drive(ctx, callers, d, calls[i])
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if profile != nil {
				if err := <-profile; err != nil {
					fmt.Fprintf(os.Stderr, "cpu profile: %v\n", err)
				}
			}
			p50[fmt.Sprint(t.name, callers)] = float64(r.Percentile(50))
			_, _ = fmt.Fprintf(w, "%s\t%d\t%.0f\t%s\t%s\t%d\t\n", t.name, callers, r.PerSecond(), ms(r.Percentile(50)), ms(r.Percentile(99)), r.Failed)
			if r.Failed > 0 {
				failures = append(failures, fmt.Sprintf("%s, %d callers: %d calls failed, the first: %v", t.name, callers, r.Failed, r.FirstErr))
			}
		}
	}
	_ = w.Flush()
	for _, f := range failures {
		fmt.Println(f)
	}
	for _, label := range []string{"", " (before)"} {
		if label != "" && before == nil {
			continue
		}
		for _, callers := range []int{1, 16} {
			fmt.Printf("gRPC door / auth directly%s, %2d callers: p50 %.2f×   (aim ≤ 1.3×)\n", label, callers,
				ratio(p50[fmt.Sprint("gRPC front door → auth"+label, callers)], p50[fmt.Sprint("auth called directly"+label, callers)]))
		}
	}
	return nil
}
