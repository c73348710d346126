package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/procfs"
)

// target is one thing driven with the same load.
type target struct {
	name  string
	url   string
	token string
	// admin is the address of a Backplane process's admin port, for its CPU profile.
	admin string
	// profile is the file the process's CPU profile under the last round's load is
	// written to; empty: none.
	profile string
	// procs and pids name the processes serving the target, whose CPU time per request
	// is reported beside the load generator's and the machine's.
	procs []string
	pids  []int
}

// Target names the ratios are taken between.
const (
	nameEcho   = "bare grpc-gateway → gRPC echo"
	nameDev    = "Backplane dev GET /v1/users/me"
	nameBefore = "Backplane dev, -base-bin (before)"
	nameServe  = "Backplane serve topology GET /v1/users/me"
	nameServeB = "Backplane serve topology, -base-bin (before)"
	namePB     = "PocketBase get-own-record"
)

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

	startDevAt := func(bin, name string) (*backplaneDev, string, func(), error) {
		fmt.Printf("==> starting %s (backplane dev, default settings, a fresh database)\n", name)
		databaseURL, drop, err := freshDatabase(ctx, o.database)
		if err != nil {
			return nil, "", nil, err
		}
		dev, err := startDev(ctx, o, bin, tmp+"/"+strings.ReplaceAll(name, " ", "-"), databaseURL)
		if err != nil {
			drop(context.WithoutCancel(ctx))
			return nil, "", nil, err
		}
		stop := func() { dev.stop(); drop(context.WithoutCancel(ctx)) }
		token, err := signUp(ctx, "http://"+dev.http)
		if err != nil {
			stop()
			return nil, "", nil, err
		}
		return dev, token, stop, nil
	}
	dev, token, stopDev, err := startDevAt(o.bin, "product")
	if err != nil {
		return err
	}
	defer stopDev()

	// stops ends the serve topologies, last started first.
	var stops []func()
	defer func() {
		for _, stop := range slices.Backward(stops) {
			stop()
		}
	}()
	targets := []target{
		{name: nameEcho, url: echoURL + "/v1/users/me", token: token, procs: []string{"echo"}, pids: []int{echoProc.pid()}},
		{name: nameDev, url: "http://" + dev.http + "/v1/users/me", token: token, admin: dev.admin, profile: o.cpuProfile, procs: []string{"dev"}, pids: []int{dev.pid()}},
		{name: namePB, url: pb[0] + "/api/collections/notes/records/" + pb[2], token: pb[1], procs: []string{"pocketbase"}, pids: []int{pbProc.pid()}},
	}
	var before *backplaneDev
	var beforeToken string
	if o.baseBin != "" {
		b, bt, stopBefore, err := startDevAt(o.baseBin, "before")
		if err != nil {
			return err
		}
		defer stopBefore()
		before, beforeToken = b, bt
		targets = append(targets, target{name: nameBefore, url: "http://" + b.http + "/v1/users/me", token: beforeToken, procs: []string{"dev"}, pids: []int{b.pid()}})
	}
	if o.serve {
		startServeAt := func(bin, name, redisURL, profile string) error {
			fmt.Printf("==> starting the serve topology of %s (backplane migrate, then the gateway and each service as a process)\n", name)
			databaseURL, drop, err := freshDatabase(ctx, o.database)
			if err != nil {
				return err
			}
			mesh, err := startServe(ctx, o, bin, redisURL, tmp+"/serve-"+name, databaseURL)
			if err != nil {
				drop(context.WithoutCancel(ctx))
				return err
			}
			stops = append(stops, func() { mesh.stop(); drop(context.WithoutCancel(ctx)) })
			serveToken, err := signUp(ctx, "http://"+mesh.http)
			if err != nil {
				return err
			}
			targetName := nameServe
			if name == "before" {
				targetName = nameServeB
			}
			t := target{name: targetName, url: "http://" + mesh.http + "/v1/users/me", token: serveToken, admin: mesh.gatewayAdmin, profile: profile}
			for i, p := range mesh.pieces {
				t.procs = append(t.procs, mesh.names[i])
				t.pids = append(t.pids, p.pid())
			}
			targets = append(targets, t)
			return nil
		}
		if err := startServeAt(o.bin, "product", o.serveRedis, o.serveProf); err != nil {
			return err
		}
		if o.baseBin != "" {
			profile := ""
			if o.serveProf != "" {
				profile = o.serveProf + ".before"
			}
			if err := startServeAt(o.baseBin, "before", o.baseRedis, profile); err != nil {
				return err
			}
		}
	}

	calls := make([]func(context.Context) error, len(targets))
	for i, t := range targets {
		client := HTTPClient(o.conns)
		defer client.CloseIdleConnections()
		calls[i] = GetOK(client, t.url, t.token)
		if err := calls[i](ctx); err != nil {
			return fmt.Errorf("%s: the first call failed: %w", t.name, err)
		}
	}
	proc, err := procfs.NewDefaultFS()
	if err != nil {
		return err
	}
	ratios := map[string][]float64{}
	for round := 1; round <= o.rounds; round++ {
		fmt.Printf("\n==> round %d of %d: each target %d connections, %s warm-up, %s measured\n", round, o.rounds, o.conns, o.warmup, o.duration)
		results := map[string]Result{}
		var costs []string
		w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		_, _ = fmt.Fprintln(w, "target\treq/s\tp50\tp99\tfailed\t")
		// Each round starts one target further on: the host's speed drifts over a run,
		// and a fixed order would hand the same target the same slice of it.
		for j := range targets {
			i := (j + round - 1) % len(targets)
			t := targets[i]
			Drive(ctx, o.conns, o.warmup, calls[i])
			var profile chan error
			if t.profile != "" && t.admin != "" && round == o.rounds {
				// The allocations over the same time beside the CPU: the collector's share
				// of the CPU follows them.
				profile = make(chan error, 2)
				go func() { profile <- fetchProfile(ctx, t.admin, "profile", o.duration-time.Second, t.profile) }()
				go func() { profile <- fetchProfile(ctx, t.admin, "allocs", o.duration-time.Second, t.profile+".allocs") }()
			}
			cpu, err := meterCPU(proc, append(t.procs, "load generator"), append(t.pids, os.Getpid()))
			if err != nil {
				return err
			}
			r := Drive(ctx, o.conns, o.duration, calls[i])
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if perRequest, err := cpu.perRequest(r.OK); err == nil {
				costs = append(costs, t.name+": "+perRequest)
			}
			if profile != nil {
				for range cap(profile) {
					if err := <-profile; err != nil {
						fmt.Fprintf(os.Stderr, "profile: %v\n", err)
					}
				}
			}
			results[t.name] = r
			_, _ = fmt.Fprintf(w, "%s\t%.0f\t%s\t%s\t%d\t\n", t.name, r.PerSecond(), ms(r.Percentile(50)), ms(r.Percentile(99)), r.Failed)
			if r.Failed > 0 {
				defer fmt.Printf("%s: %d calls failed, the first: %v\n", t.name, r.Failed, r.FirstErr)
			}
		}
		_ = w.Flush()
		fmt.Println("CPU time per request, by process:")
		for _, c := range costs {
			fmt.Println("  " + c)
		}
		for _, c := range []struct{ a, b, aim string }{
			{nameDev, nameEcho, "≥ 0.5×"},
			{nameDev, namePB, "≥ 1.5×"},
			{nameServe, nameEcho, "≥ 0.4×"},
			{nameServeB, nameEcho, ""},
			{nameServe, nameServeB, ""},
			{nameBefore, nameEcho, ""},
			{nameBefore, namePB, ""},
			{nameDev, nameBefore, ""},
		} {
			a, okA := results[c.a]
			b, okB := results[c.b]
			if !okA || !okB {
				continue
			}
			key := c.a + " / " + c.b
			tp := ratio(a.PerSecond(), b.PerSecond())
			ratios[key] = append(ratios[key], tp)
			aim := ""
			if c.aim != "" {
				aim = "   (aim: throughput " + c.aim + ")"
			}
			fmt.Printf("%s: throughput %.2f×, p50 %.2f×%s\n", key, tp,
				ratio(float64(a.Percentile(50)), float64(b.Percentile(50))), aim)
		}
	}
	if o.rounds > 1 {
		fmt.Println("\nthroughput ratios across rounds:")
		for _, k := range slices.Sorted(maps.Keys(ratios)) {
			fmt.Printf("  %s: %.2f–%.2f×, median %.2f×\n", k, slices.Min(ratios[k]), slices.Max(ratios[k]), median(ratios[k]))
		}
	}
	return measureGRPC(ctx, o, dev, before, echo[1], token, beforeToken)
}

// fetchProfile writes a profile of the process behind admin, taken over d: kind is
// "profile" for the CPU, "allocs" for the allocations made meanwhile.
func fetchProfile(ctx context.Context, admin, kind string, d time.Duration, path string) error {
	url := fmt.Sprintf("http://%s/debug/pprof/%s?seconds=%d", admin, kind, max(1, int(d.Seconds())))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(path) //nolint:gosec // where the caller asked for it
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

// median is the middle of xs (the mean of the middle two when their number is even):
// on a shared host a round can run slow throughout, and the median is the figure one
// such round moves least.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
