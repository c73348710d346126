package authn_test

import (
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/authn"
)

// Example wires enforcement into a process that does not run the auth service (the
// gateway, or any other service): keys and API keys come from the auth service over
// gRPC, sessions from the shared Redis (a session whose key Redis lost is asked about at
// the auth service), and the interceptor goes into the grpcserver.Config Unary/Stream
// slots.
func Example() {
	var (
		authConn *grpc.ClientConn      // to the auth service, carrying this process's service token
		rdb      redis.UniversalClient // the shared Redis
		secret   []byte                // BACKPLANE_SERVICE_TOKEN_SECRET
		log      = slog.Default()
	)
	client := authv1.NewAuthServiceClient(authConn)

	verifier, err := authn.NewVerifier(authn.VerifierConfig{
		Issuer:   "https://app.example.com", // BACKPLANE_JWT_ISSUER, as the auth service has it
		Audience: "backplane",
		Keys:     authn.GRPCJWKS{Client: client},
		Sessions: authn.NewLiveSessions(rdb, authn.WithSessionRecords(authn.NewGRPCSessionRecords(client))),
	})
	if err != nil {
		return
	}
	services, err := authn.NewHMACServiceTokens(secret, time.Minute, nil)
	if err != nil {
		return
	}
	in, err := authn.NewInterceptor(authn.InterceptorConfig{
		Tokens:   verifier,
		APIKeys:  authn.NewCachedIntrospector(authn.GRPCIntrospector{Client: client}, time.Second, nil),
		Services: services,
		Logger:   log,
	})
	if err != nil {
		return
	}
	_ = []grpc.UnaryServerInterceptor{in.Unary()}   // grpcserver.Config.Unary
	_ = []grpc.StreamServerInterceptor{in.Stream()} // grpcserver.Config.Stream
	// The client side of INTERNAL calls: grpc.WithPerRPCCredentials(services.PerRPCCredentials("gateway")).
}
