package gateway

import (
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/reflection"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
)

// edgeFiles is the descriptor set the edge's reflection serves: every linked file, with
// the methods the edge does not route removed from our service files, so grpcurl, buf
// curl and Postman see exactly the public API and nothing of the internal one.
func edgeFiles(routes map[string]*route) (*protoregistry.Files, error) {
	exposed := map[protoreflect.FullName]bool{}
	servicesByFile := map[string]bool{}
	for _, r := range routes {
		exposed[r.method.FullName()] = true
		servicesByFile[r.method.ParentFile().Path()] = true
	}
	files := new(protoregistry.Files)
	var err error
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if servicesByFile[fd.Path()] || fd.Services().Len() > 0 && strings.HasPrefix(string(fd.Package()), "backplane.") {
			fd, err = stripUnexposed(fd, exposed)
			if err != nil {
				return false
			}
		}
		err = files.RegisterFile(fd)
		return err == nil
	})
	return files, err
}

func stripUnexposed(fd protoreflect.FileDescriptor, exposed map[protoreflect.FullName]bool) (protoreflect.FileDescriptor, error) {
	fdp := protodesc.ToFileDescriptorProto(fd)
	var services []*descriptorpb.ServiceDescriptorProto
	for _, s := range fdp.GetService() {
		var methods []*descriptorpb.MethodDescriptorProto
		for _, m := range s.GetMethod() {
			if exposed[protoreflect.FullName(fdp.GetPackage()+"."+s.GetName()+"."+m.GetName())] {
				methods = append(methods, m)
			}
		}
		if len(methods) > 0 {
			s.Method = methods
			services = append(services, s)
		}
	}
	fdp.Service = services
	out, err := protodesc.NewFile(fdp, protoregistry.GlobalFiles)
	if err != nil {
		return nil, fmt.Errorf("gateway: filter %s for reflection: %w", fd.Path(), err)
	}
	return out, nil
}

// listedServices shows reflection clients the routed services and health, not the
// reflection service itself.
type listedServices struct {
	server *grpc.Server
	names  map[string]bool
}

func (l listedServices) GetServiceInfo() map[string]grpc.ServiceInfo {
	out := map[string]grpc.ServiceInfo{}
	for name, info := range l.server.GetServiceInfo() {
		if l.names[name] {
			out[name] = info
		}
	}
	return out
}

// registerReflection serves reflection (v1 and v1alpha, which older tools still use)
// over the edge's filtered descriptors.
func registerReflection(s *grpc.Server, routes map[string]*route) error {
	files, err := edgeFiles(routes)
	if err != nil {
		return err
	}
	names := map[string]bool{"grpc.health.v1.Health": true}
	for _, r := range routes {
		names[string(r.method.Parent().FullName())] = true
	}
	opts := reflection.ServerOptions{
		Services:           listedServices{server: s, names: names},
		DescriptorResolver: files,
		ExtensionResolver:  protoregistry.GlobalTypes,
	}
	reflectionv1.RegisterServerReflectionServer(s, reflection.NewServerV1(opts))
	reflectionv1alpha.RegisterServerReflectionServer(s, reflection.NewServer(opts))
	return nil
}
