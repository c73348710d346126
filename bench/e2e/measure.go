package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// target is one thing driven with the same load.
type target struct {
	name  string
	url   string
	token string
}

func measure(ctx context.Context, o options) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "bench-e2e-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(tmp) }()

	fmt.Println("==> starting the bare grpc-gateway → gRPC echo")
	echoProc, err := start(ctx, "echo", nil, self, "echo")
	if err != nil {
		return err
	}
	defer echoProc.stop()
	line, err := echoProc.waitLine(ctx)
	if err != nil {
		return err
	}
	echo := strings.Fields(line)
	if len(echo) != 2 {
		return fmt.Errorf("echo said %q", line)
	}
	echoURL := echo[0]

	fmt.Println("==> starting PocketBase v0.36.8 (a user and a note only its owner may view)")
	pbProc, err := start(ctx, "pocketbase", nil, self, "pocketbase", tmp+"/pocketbase")
	if err != nil {
		return err
	}
	defer pbProc.stop()
	line, err = pbProc.waitLine(ctx)
	if err != nil {
		return err
	}
	pb := strings.Fields(line)
	if len(pb) != 3 {
		return fmt.Errorf("pocketbase said %q", line)
	}
	if err := pbProc.waitOK(ctx, pb[0]+"/api/health"); err != nil {
		return err
	}

	fmt.Println("==> starting backplane dev (default settings, a fresh database)")
	databaseURL, drop, err := freshDatabase(ctx, o.database)
	if err != nil {
		return err
	}
	defer drop(context.WithoutCancel(ctx))
	dev, err := startDev(ctx, o, tmp+"/backplane", databaseURL)
	if err != nil {
		return err
	}
	defer dev.stop()
	token, err := signUp(ctx, "http://"+dev.http)
	if err != nil {
		return err
	}

	targets := []target{
		{name: "bare grpc-gateway → gRPC echo", url: echoURL + "/v1/users/me", token: token},
		{name: "Backplane dev GET /v1/users/me", url: "http://" + dev.http + "/v1/users/me", token: token},
		{name: "PocketBase get-own-record", url: pb[0] + "/api/collections/notes/records/" + pb[2], token: pb[1]},
	}
	results := make([]Result, len(targets))
	for i, t := range targets {
		client := HTTPClient(o.conns)
		call := GetOK(client, t.url, t.token)
		if err := call(ctx); err != nil {
			return fmt.Errorf("%s: the first call failed: %w", t.name, err)
		}
		fmt.Printf("==> %s: %d connections, %s warm-up, %s measured\n", t.name, o.conns, o.warmup, o.duration)
		Drive(ctx, o.conns, o.warmup, call)
		results[i] = Drive(ctx, o.conns, o.duration, call)
		client.CloseIdleConnections()
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}

	fmt.Println()
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	_, _ = fmt.Fprintln(w, "target\treq/s\tp50\tp99\tfailed\t")
	for i, t := range targets {
		r := results[i]
		_, _ = fmt.Fprintf(w, "%s\t%.0f\t%s\t%s\t%d\t\n", t.name, r.PerSecond(), ms(r.Percentile(50)), ms(r.Percentile(99)), r.Failed)
	}
	_ = w.Flush()
	echoR, product, pbR := results[0], results[1], results[2]
	fmt.Println()
	fmt.Printf("product / echo:       throughput %.2f×, p50 %.2f×   (aim: throughput ≥ 0.5×)\n",
		ratio(product.PerSecond(), echoR.PerSecond()), ratio(float64(product.Percentile(50)), float64(echoR.Percentile(50))))
	fmt.Printf("product / PocketBase: throughput %.2f×, p50 %.2f×   (aim: throughput ≥ 1.5×)\n",
		ratio(product.PerSecond(), pbR.PerSecond()), ratio(float64(product.Percentile(50)), float64(pbR.Percentile(50))))
	for i, r := range results {
		if r.Failed > 0 {
			fmt.Printf("%s: %d calls failed, the first: %v\n", targets[i].name, r.Failed, r.FirstErr)
		}
	}
	return measureGRPC(ctx, o, dev.grpc, echo[1], token)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
