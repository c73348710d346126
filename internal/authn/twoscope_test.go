package authn

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/emptypb"

	accessv1 "github.com/backplane/backplane/gen/backplane/access/v1"
)

// No RPC of ours lists two scopes yet, but the policy allows it and the interceptor must
// then require both. This test-only service declares such a method, the way a proto
// would, so the policy table can call it.
const (
	twoScopeService = "backplane.authntest.v1.TwoScopeService"
	twoScopeMethod  = "/" + twoScopeService + "/CopyProfile"
)

var twoScopeScopes = []string{"profile:read", "profile:write"}

// registerTwoScopeFile adds the service's descriptor to the global registry, where the
// interceptor looks policies up. Registration is process-wide, hence once.
var registerTwoScopeFile = sync.OnceValue(func() error {
	opts := &descriptorpb.MethodOptions{}
	proto.SetExtension(opts, accessv1.E_Policy, &accessv1.Policy{
		Audience: accessv1.Audience_AUDIENCE_USER,
		Scopes:   twoScopeScopes,
	})
	fdp := &descriptorpb.FileDescriptorProto{
		Name:       proto.String("backplane/authntest/v1/two_scope.proto"),
		Package:    proto.String("backplane.authntest.v1"),
		Syntax:     proto.String("proto3"),
		Dependency: []string{"google/protobuf/empty.proto", "backplane/access/v1/access.proto"},
		Service: []*descriptorpb.ServiceDescriptorProto{{
			Name: proto.String("TwoScopeService"),
			Method: []*descriptorpb.MethodDescriptorProto{{
				Name:       proto.String("CopyProfile"),
				InputType:  proto.String(".google.protobuf.Empty"),
				OutputType: proto.String(".google.protobuf.Empty"),
				Options:    opts,
			}},
		}},
	}
	fd, err := protodesc.NewFile(fdp, protoregistry.GlobalFiles)
	if err != nil {
		return err
	}
	return protoregistry.GlobalFiles.RegisterFile(fd)
})

// The file is registered before any test runs, not by the first test that needs it:
// registering while a parallel test's protovalidate.New walks the registry deadlocks
// (the walk takes the registry's read lock again inside RangeFiles, and a writer waiting
// between the two blocks the second). Its error is reported by registerTwoScopeService.
var _ = registerTwoScopeFile()

// registerTwoScopeService serves the two-scope method on srv, answering an empty message.
func registerTwoScopeService(t *testing.T, srv grpc.ServiceRegistrar) {
	t.Helper()
	require.NoError(t, registerTwoScopeFile())
	srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: twoScopeService,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "CopyProfile",
			Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
				in := &emptypb.Empty{}
				if err := dec(in); err != nil {
					return nil, err
				}
				handler := func(context.Context, any) (any, error) { return &emptypb.Empty{}, nil }
				return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: twoScopeMethod}, handler)
			},
		}},
	}, struct{}{})
}
