package backplane

import (
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	accessv1 "github.com/backplane/backplane/gen/backplane/access/v1"
	assetv1 "github.com/backplane/backplane/gen/backplane/asset/v1"
	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	notificationv1 "github.com/backplane/backplane/gen/backplane/notification/v1"
	subscriptionv1 "github.com/backplane/backplane/gen/backplane/subscription/v1"
	usagev1 "github.com/backplane/backplane/gen/backplane/usage/v1"
)

// method is what the contract says about one RPC that decides how the client calls it.
// The client does not keep a hand-written list: it reads the access policy and the HTTP
// mapping written in the protos, so a new RPC is classified the day it is generated.
type method struct {
	// public is true for AUDIENCE_PUBLIC: anyone may call it, so the client never
	// refreshes a token for it (it still passes on a fresh one, which the server uses
	// only to pick the caller's rate limit).
	public bool
	// idempotent is true when the RPC's HTTP mapping is GET, PUT or DELETE: repeating
	// the call leaves the server as one call would, so a call that may or may not have
	// run (UNAVAILABLE) is safe to send again.
	idempotent bool
	// idempotencyKey is the request's idempotency_key field, if it has one: a POST that
	// carries a key is safe to repeat too, because the server answers a repeat with the
	// first call's result.
	idempotencyKey protoreflect.FieldDescriptor
}

// safeToRepeat reports whether req may be sent again after a failure that leaves it
// unknown whether it ran.
func (m method) safeToRepeat(req any) bool {
	if m.idempotent {
		return true
	}
	if m.idempotencyKey == nil {
		return false
	}
	msg, ok := req.(proto.Message)
	return ok && msg.ProtoReflect().Get(m.idempotencyKey).String() != ""
}

// edgeServices are the files of the services the client exposes.
func edgeServices() []protoreflect.FileDescriptor {
	return []protoreflect.FileDescriptor{
		authv1.File_backplane_auth_v1_auth_proto,
		subscriptionv1.File_backplane_subscription_v1_subscription_proto,
		assetv1.File_backplane_asset_v1_asset_proto,
		usagev1.File_backplane_usage_v1_usage_proto,
		notificationv1.File_backplane_notification_v1_notification_proto,
	}
}

// methodTable classifies every RPC of the edge services, keyed by the full method name
// gRPC gives interceptors ("/backplane.auth.v1.AuthService/Login"). A method missing
// from it (one called through Conn on another service) is treated as needing a
// credential and as unsafe to repeat.
func methodTable() map[string]method {
	table := map[string]method{}
	for _, file := range edgeServices() {
		services := file.Services()
		for i := range services.Len() {
			svc := services.Get(i)
			methods := svc.Methods()
			for j := range methods.Len() {
				md := methods.Get(j)
				table["/"+string(svc.FullName())+"/"+string(md.Name())] = classify(md)
			}
		}
	}
	return table
}

func classify(md protoreflect.MethodDescriptor) method {
	var m method
	opts := md.Options()
	if policy, ok := proto.GetExtension(opts, accessv1.E_Policy).(*accessv1.Policy); ok {
		m.public = policy.GetAudience() == accessv1.Audience_AUDIENCE_PUBLIC
	}
	if rule, ok := proto.GetExtension(opts, annotations.E_Http).(*annotations.HttpRule); ok {
		switch rule.GetPattern().(type) {
		case *annotations.HttpRule_Get, *annotations.HttpRule_Put, *annotations.HttpRule_Delete:
			m.idempotent = true
		}
	}
	if fd := md.Input().Fields().ByName("idempotency_key"); fd != nil && fd.Kind() == protoreflect.StringKind && !fd.IsList() {
		m.idempotencyKey = fd
	}
	return m
}
