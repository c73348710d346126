package telemetry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/runtime"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/semconv/v1.43.0/processconv"
)

// processSample is what the operating system tells about this process; a field the
// platform cannot provide is left out (ok false), never reported as zero.
type processSample struct {
	user, system   time.Duration
	cpuOK          bool
	resident, virt int64
	memoryOK       bool
	fds            int64
	fdsOK          bool
}

// startProcessMetrics records the Go runtime's metrics (go.memory.used,
// go.goroutine.count, go.schedule.duration, …, from the OpenTelemetry runtime
// instrumentation) and the process's own (process.cpu.time, process.memory.usage,
// process.memory.virtual, process.unix.file_descriptor.count, process.uptime) on mp,
// the provider that pushes over OTLP. /metrics serves client_golang's go_* and
// process_* collectors instead, the names Prometheus dashboards expect.
func startProcessMetrics(mp metric.MeterProvider, started time.Time) error {
	if err := runtime.Start(runtime.WithMeterProvider(mp)); err != nil {
		return fmt.Errorf("telemetry: runtime metrics: %w", err)
	}
	meter := mp.Meter("github.com/backplane/backplane/internal/telemetry")
	cpu, err1 := processconv.NewCPUTime(meter)
	resident, err2 := processconv.NewMemoryUsageObservable(meter)
	virt, err3 := processconv.NewMemoryVirtualObservable(meter)
	fds, err4 := processconv.NewUnixFileDescriptorCountObservable(meter)
	uptime, err5 := meter.Float64ObservableGauge("process.uptime",
		metric.WithDescription("The time the process has been running."), metric.WithUnit("s"))
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		return fmt.Errorf("telemetry: process metrics: %w", err)
	}
	userAttr := metric.WithAttributes(cpu.AttrCPUMode(processconv.CPUModeUser))
	systemAttr := metric.WithAttributes(cpu.AttrCPUMode(processconv.CPUModeSystem))
	_, err := meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s := readProcess()
		if s.cpuOK {
			o.ObserveFloat64(cpu.Inst(), s.user.Seconds(), userAttr)
			o.ObserveFloat64(cpu.Inst(), s.system.Seconds(), systemAttr)
		}
		if s.memoryOK {
			o.ObserveInt64(resident.Inst(), s.resident)
			o.ObserveInt64(virt.Inst(), s.virt)
		}
		if s.fdsOK {
			o.ObserveInt64(fds.Inst(), s.fds)
		}
		o.ObserveFloat64(uptime, time.Since(started).Seconds())
		return nil
	}, cpu.Inst(), resident.Inst(), virt.Inst(), fds.Inst(), uptime)
	if err != nil {
		return fmt.Errorf("telemetry: process metrics: %w", err)
	}
	return nil
}
