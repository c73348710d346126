package access

import (
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	accessv1 "github.com/backplane/backplane/gen/backplane/access/v1"
)

// PolicyOf returns the policy declared on a method, or nil when it declares none.
func PolicyOf(md protoreflect.MethodDescriptor) *accessv1.Policy {
	opts := md.Options()
	if opts == nil || !proto.HasExtension(opts, accessv1.E_Policy) {
		return nil
	}
	p, _ := proto.GetExtension(opts, accessv1.E_Policy).(*accessv1.Policy)
	if p == nil || p.GetAudience() == accessv1.Audience_AUDIENCE_UNSPECIFIED {
		return nil
	}
	return p
}

// Method resolves a gRPC full method name ("/pkg.Service/Method") to its descriptor among
// the files linked into this binary.
func Method(fullMethod string) (protoreflect.MethodDescriptor, bool) {
	name := strings.TrimPrefix(fullMethod, "/")
	svc, method, ok := strings.Cut(name, "/")
	if !ok {
		return nil, false
	}
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(svc))
	if err != nil {
		return nil, false
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return nil, false
	}
	md := sd.Methods().ByName(protoreflect.Name(method))
	return md, md != nil
}

// Lookup returns the policy of a gRPC full method name. A method that is unknown or
// declares no policy yields nil: callers must treat that as "deny".
func Lookup(fullMethod string) *accessv1.Policy {
	md, ok := Method(fullMethod)
	if !ok {
		return nil
	}
	return PolicyOf(md)
}

// EdgeExposed reports whether the edge may route a method: it declares a policy and that
// policy is not INTERNAL.
func EdgeExposed(md protoreflect.MethodDescriptor) bool {
	p := PolicyOf(md)
	return p != nil && p.GetAudience() != accessv1.Audience_AUDIENCE_INTERNAL
}

// Cost is the number of rate-limit units one call spends (at least one).
func Cost(p *accessv1.Policy) int {
	if p == nil || p.GetRateLimitCost() == 0 {
		return 1
	}
	return int(p.GetRateLimitCost())
}
