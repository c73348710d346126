package grpcserver

import (
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"

	"github.com/backplane/backplane/internal/telemetry"
)

// registeredMethods answers whether a full method name is one the server serves. It
// reads the server's services on first use, which comes with the first call, after
// every service was registered.
type registeredMethods struct {
	server *grpc.Server
	once   sync.Once
	names  map[string]bool
}

func (r *registeredMethods) has(fullMethod string) bool {
	r.once.Do(func() {
		r.names = map[string]bool{}
		for svc, info := range r.server.GetServiceInfo() {
			for _, m := range info.Methods {
				r.names["/"+svc+"/"+m.Name] = true
			}
		}
	})
	return r.names[fullMethod]
}

// telemetryFilter leaves out of traces and metrics the health checks and reflection,
// and calls to methods the server does not serve, whose names come from the client
// and would each mint a new series.
func telemetryFilter(methods *registeredMethods) func(*stats.RPCTagInfo) bool {
	return telemetry.GRPCFilter(methods.has)
}
