// Package catalog lists Backplane's public gRPC services: which service of the mesh owns
// each, its descriptor, and how to mount its REST mapping. It is the one table to extend
// when a new service is added; new RPCs on existing services need no change anywhere.
package catalog

import (
	"context"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/reflect/protoreflect"

	assetv1 "github.com/backplane/backplane/gen/backplane/asset/v1"
	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	subscriptionv1 "github.com/backplane/backplane/gen/backplane/subscription/v1"
	usagev1 "github.com/backplane/backplane/gen/backplane/usage/v1"
)

// Entry is one gRPC service and the mesh service that owns it.
type Entry struct {
	// Owner is the mesh service that serves it ("auth", "usage", ...).
	Owner string
	// Service describes its RPCs, HTTP mappings and access policies.
	Service protoreflect.ServiceDescriptor
	// RegisterREST mounts its google.api.http mappings on a grpc-gateway mux, forwarding
	// through conn.
	RegisterREST func(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface) error
}

// Entries returns every public gRPC service of Backplane.
func Entries() []Entry {
	return []Entry{
		{
			Owner:   "auth",
			Service: authv1.File_backplane_auth_v1_auth_proto.Services().ByName("AuthService"),
			RegisterREST: func(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface) error {
				return authv1.RegisterAuthServiceHandlerClient(ctx, mux, authv1.NewAuthServiceClient(conn))
			},
		},
		{
			Owner:   "subscription",
			Service: subscriptionv1.File_backplane_subscription_v1_subscription_proto.Services().ByName("SubscriptionService"),
			RegisterREST: func(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface) error {
				return subscriptionv1.RegisterSubscriptionServiceHandlerClient(ctx, mux, subscriptionv1.NewSubscriptionServiceClient(conn))
			},
		},
		{
			Owner:   "asset",
			Service: assetv1.File_backplane_asset_v1_asset_proto.Services().ByName("AssetService"),
			RegisterREST: func(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface) error {
				return assetv1.RegisterAssetServiceHandlerClient(ctx, mux, assetv1.NewAssetServiceClient(conn))
			},
		},
		{
			Owner:   "usage",
			Service: usagev1.File_backplane_usage_v1_usage_proto.Services().ByName("UsageService"),
			RegisterREST: func(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface) error {
				return usagev1.RegisterUsageServiceHandlerClient(ctx, mux, usagev1.NewUsageServiceClient(conn))
			},
		},
		{
			Owner:   "notification",
			Service: notificationv1.File_backplane_notification_v1_notification_proto.Services().ByName("NotificationService"),
			RegisterREST: func(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface) error {
				return notificationv1.RegisterNotificationServiceHandlerClient(ctx, mux, notificationv1.NewNotificationServiceClient(conn))
			},
		},
	}
}

// Owners returns the mesh services that own at least one public gRPC service.
func Owners() []string {
	seen := map[string]bool{}
	var out []string
	for _, e := range Entries() {
		if !seen[e.Owner] {
			seen[e.Owner] = true
			out = append(out, e.Owner)
		}
	}
	return out
}
