package bench_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/backplane/backplane/gateway"
	usagev1 "github.com/backplane/backplane/gen/backplane/usage/v1"
	"github.com/backplane/backplane/internal/grpctest"
	"github.com/backplane/backplane/internal/logging"
	"github.com/backplane/backplane/services"
)

// ingest stands in for the usage service's IngestUsage: it adds up what it is sent and
// answers every user a standing well within a quota, so that the edge checks each call
// against one, as it does for a plan with an api_calls quota.
type ingest struct {
	usagev1.UnimplementedUsageServiceServer
	calls atomic.Int64
}

func (i *ingest) IngestUsage(_ context.Context, req *usagev1.IngestUsageRequest) (*usagev1.IngestUsageResponse, error) {
	resp := &usagev1.IngestUsageResponse{}
	limit := int64(1 << 50)
	for _, e := range req.GetEvents() {
		total := i.calls.Add(e.GetUsage().GetQuantity())
		resp.Results = append(resp.Results, &usagev1.RecordUsageResult{Outcome: usagev1.RecordOutcome_RECORD_OUTCOME_RECORDED})
		resp.Standings = append(resp.Standings, &usagev1.QuotaStanding{
			UserId: e.GetUserId(), Meter: e.GetUsage().GetMeter(), Total: total, Limit: &limit,
			ResetTime: timestamppb.New(time.Now().Add(time.Hour)),
		})
	}
	return resp, nil
}

// BenchmarkRESTEdgeCountingAPICalls: REST GET /v1/users/me through the gateway's whole
// chain with api_calls counting on (each call counted in memory and checked against the
// user's quota; batches sent every second or 500 calls to a stand-in usage service),
// against the same gateway without it, in the same run. Aim: throughput-ratio ≥ 0.95.
func BenchmarkRESTEdgeCountingAPICalls(b *testing.B) {
	e := startEdge(b, echo{}, false)
	counted := &ingest{}
	srv := grpc.NewServer()
	usagev1.RegisterUsageServiceServer(srv, counted)
	var lc net.ListenConfig
	lis, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	b.Cleanup(srv.Stop)
	usageConn := grpctest.Dial(b, lis.Addr().String())

	backends := map[string]grpc.ClientConnInterface{}
	for _, o := range services.Names() {
		backends[o] = e.backend
	}
	serverCfg := grpctest.ServerConfig(b)
	serverCfg.Authenticate = e.security.interceptors
	gw, err := gateway.New(context.Background(), gateway.Config{
		Logger:    logging.New(io.Discard, logging.Options{}),
		Server:    serverCfg,
		Backends:  backends,
		APIs:      services.APIs(),
		RateLimit: e.security.rateLimit,
		APICalls:  &gateway.APICallsConfig{Usage: usagev1.NewUsageServiceClient(usageConn)},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = gw.Stop(context.Background()) })
	gwSrv := httptest.NewServer(gw.REST())
	b.Cleanup(gwSrv.Close)

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	compare(b, 4000, 8,
		httpGet(b.Context(), client, e.gwREST+"/v1/users/me", e.security.token),
		httpGet(b.Context(), client, gwSrv.URL+"/v1/users/me", e.security.token))
	if err := gw.Stop(context.Background()); err != nil {
		b.Fatal(err)
	}
	if counted.calls.Load() == 0 {
		b.Fatal("no call was counted")
	}
}
