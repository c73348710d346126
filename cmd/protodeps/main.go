// Command protodeps writes out the .proto sources that Backplane's contracts import
// (google/api, buf/validate, the OpenAPI options) from the descriptors compiled into
// this module's Go dependencies.
//
// The buf.build registry is unreachable from where Backplane is built, so buf cannot fetch
// these modules. The Go packages we already depend on at run time carry the very same
// descriptors, which keeps the protos we compile against in lock-step with the Go code
// that interprets them: bumping a dependency in go.mod bumps both.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/jhump/protoreflect/v2/protoprint"
	"google.golang.org/protobuf/reflect/protoreflect"

	validatepb "buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	openapiv2pb "github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2/options"
	openapipb "github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv3/options"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/genproto/googleapis/api/httpbody"
)

func main() {
	out := flag.String("out", ".protodeps", "directory to write the .proto files into")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "protodeps:", err)
		os.Exit(1)
	}
}

// roots are the files our protos import; their own imports are followed, except the
// well-known types under google/protobuf, which buf ships itself.
func roots() []protoreflect.FileDescriptor {
	return []protoreflect.FileDescriptor{
		annotations.File_google_api_annotations_proto,
		annotations.File_google_api_field_behavior_proto,
		annotations.File_google_api_resource_proto,
		httpbody.File_google_api_httpbody_proto,
		validatepb.File_buf_validate_validate_proto,
		openapipb.File_protoc_gen_openapiv3_options_annotations_proto,
		// No contract imports the OpenAPI v2 options any more, but earlier revisions do,
		// and `make breaking` compiles those with these imports.
		openapiv2pb.File_protoc_gen_openapiv2_options_annotations_proto,
	}
}

func run(out string) error {
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o750); err != nil {
		return err
	}
	// Every file is written through an os.Root, so no descriptor's path can lead a
	// write outside out.
	root, err := os.OpenRoot(out)
	if err != nil {
		return err
	}
	defer func() { _ = root.Close() }() // a directory handle: closing it cannot lose data
	printer := &protoprint.Printer{Compact: false, SortElements: false}
	seen := map[string]bool{}
	var visit func(fd protoreflect.FileDescriptor) error
	visit = func(fd protoreflect.FileDescriptor) error {
		path := fd.Path()
		if seen[path] || filepath.Dir(path) == "google/protobuf" {
			return nil
		}
		seen[path] = true
		imports := fd.Imports()
		for i := range imports.Len() {
			if err := visit(imports.Get(i).FileDescriptor); err != nil {
				return err
			}
		}
		if err := root.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return err
		}
		f, err := root.Create(path)
		if err != nil {
			return err
		}
		if err := printer.PrintProtoFile(fd, f); err != nil {
			_ = f.Close()
			return fmt.Errorf("print %s: %w", path, err)
		}
		return f.Close()
	}
	for _, fd := range roots() {
		if err := visit(fd); err != nil {
			return err
		}
	}
	return nil
}
