package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"

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

// measureGRPC compares the gRPC front door of backplane dev (the real auth service behind
// it) with the bare gRPC echo, at 1 and 16 concurrent callers sharing one connection.
// Direct calls to auth are not measured here: auth refuses a caller the edge did not
// vouch for, and dev's service credential is random per process.
func measureGRPC(ctx context.Context, o options, doorAddr, echoAddr, token string) error {
	door, err := grpc.NewClient(doorAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer func() { _ = door.Close() }()
	bare, err := grpc.NewClient(echoAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer func() { _ = bare.Close() }()
	calls := []struct {
		name string
		call func(context.Context) error
	}{
		{"bare gRPC echo", getCurrentUser(bare, token)},
		{"gRPC front door → auth, backplane dev", getCurrentUser(door, token)},
	}
	for _, c := range calls {
		if err := c.call(ctx); err != nil {
			return fmt.Errorf("%s: the first call failed: %w", c.name, err)
		}
	}
	d := o.duration / 2
	fmt.Printf("\n==> gRPC GetCurrentUser at 1 and 16 callers, %s warm-up, %s measured each\n", o.warmup/2, d)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	_, _ = fmt.Fprintln(w, "target\tcallers\tcalls/s\tp50\tp99\tfailed\t")
	p50 := map[string]float64{}
	var failures []string
	for _, callers := range []int{1, 16} {
		for _, c := range calls {
			Drive(ctx, callers, o.warmup/2, c.call)
			r := Drive(ctx, callers, d, c.call)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			p50[fmt.Sprint(c.name, callers)] = float64(r.Percentile(50))
			_, _ = fmt.Fprintf(w, "%s\t%d\t%.0f\t%s\t%s\t%d\t\n", c.name, callers, r.PerSecond(), ms(r.Percentile(50)), ms(r.Percentile(99)), r.Failed)
			if r.Failed > 0 {
				failures = append(failures, fmt.Sprintf("%s, %d callers: %d calls failed, the first: %v", c.name, callers, r.Failed, r.FirstErr))
			}
		}
	}
	_ = w.Flush()
	for _, f := range failures {
		fmt.Println(f)
	}
	for _, callers := range []int{1, 16} {
		fmt.Printf("gRPC door / bare echo, %2d callers: p50 %.2f×\n", callers,
			ratio(p50[fmt.Sprint(calls[1].name, callers)], p50[fmt.Sprint(calls[0].name, callers)]))
	}
	return nil
}
