package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv3/options"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/pluginpb"
)

// policyExtension is the access policy every RPC carries (backplane/access/v1).
const policyExtension = "backplane.access.v1.policy"

// httpBodyRef is how the upstream generator refers to google.api.HttpBody, which the
// gateway reads and writes as raw bytes.
const httpBodyRef = "#/components/schemas/google.api.HttpBody"

// ndjson is the media type of streamed bodies: one JSON value per line.
const ndjson = "application/x-ndjson"

// build turns the upstream generator's per-file documents into Backplane's one document.
func build(req *pluginpb.CodeGeneratorRequest, parts []*pluginpb.CodeGeneratorResponse_File) ([]byte, error) {
	c, err := newContracts(req)
	if err != nil {
		return nil, err
	}
	doc, err := merge(parts)
	if err != nil {
		return nil, err
	}
	if err := c.apply(doc); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// merge joins the per-file documents: paths in the order the files came, component
// schemas by name. Two files may share a schema (google.rpc.Status) only if they agree.
func merge(parts []*pluginpb.CodeGeneratorResponse_File) (*object, error) {
	paths, schemas := newObject(), newObject()
	var tags []any
	tagged := map[string]string{}
	for _, p := range parts {
		part, err := decodeObject([]byte(p.GetContent()))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.GetName(), err)
		}
		list, _ := part.vals["tags"].([]any)
		for _, t := range list {
			tag, ok := t.(*object)
			if !ok {
				return nil, fmt.Errorf("%s: a tag is not an object", p.GetName())
			}
			c, err := canonical(tag)
			if err != nil {
				return nil, err
			}
			name := tag.str("name")
			if have, seen := tagged[name]; seen {
				if have != c {
					return nil, fmt.Errorf("%s: tag %q is declared differently in another file", p.GetName(), name)
				}
				continue
			}
			tagged[name] = c
			tags = append(tags, tag)
		}
		if ps := part.obj("paths"); ps != nil {
			for _, path := range ps.keys {
				item, have := ps.obj(path), paths.obj(path)
				if have == nil {
					paths.set(path, item)
					continue
				}
				for _, method := range item.keys {
					if _, dup := have.get(method); dup {
						return nil, fmt.Errorf("%s: %s %s is declared twice", p.GetName(), strings.ToUpper(method), path)
					}
					have.set(method, item.vals[method])
				}
			}
		}
		comps := part.obj("components")
		if comps == nil {
			continue
		}
		for _, kind := range comps.keys {
			if kind != "schemas" {
				return nil, fmt.Errorf("%s: components.%s is not merged by this plugin", p.GetName(), kind)
			}
		}
		s := comps.obj("schemas")
		if s == nil {
			continue
		}
		for _, name := range s.keys {
			if err := mergeSchema(schemas, name, s.vals[name]); err != nil {
				return nil, fmt.Errorf("%s: %w", p.GetName(), err)
			}
		}
	}
	sort.Strings(schemas.keys)
	doc := newObject()
	doc.set("openapi", "3.1.0")
	doc.set("tags", tags)
	doc.set("paths", paths)
	components := newObject()
	components.set("schemas", schemas)
	doc.set("components", components)
	return doc, nil
}

func mergeSchema(schemas *object, name string, schema any) error {
	have, ok := schemas.get(name)
	if !ok {
		schemas.set(name, schema)
		return nil
	}
	a, err := canonical(have)
	if err != nil {
		return err
	}
	b, err := canonical(schema)
	if err != nil {
		return err
	}
	if a != b {
		return fmt.Errorf("schema %s differs between files", name)
	}
	return nil
}

// contracts is what the protos say that the upstream generator does not read.
type contracts struct {
	// methods by the upstream generator's operation id, <Service>_<Method>.
	methods  map[string]protoreflect.MethodDescriptor
	policy   protoreflect.ExtensionType
	resolver *protoregistry.Types
	document *options.Document
}

func newContracts(req *pluginpb.CodeGeneratorRequest) (*contracts, error) {
	files, err := protodesc.NewFiles(&descriptorpb.FileDescriptorSet{File: req.GetProtoFile()})
	if err != nil {
		return nil, fmt.Errorf("descriptors: %w", err)
	}
	// The policy is read through a dynamic extension type built from the request, not
	// through gen/, which buf empties before any plugin runs.
	d, err := files.FindDescriptorByName(policyExtension)
	if err != nil {
		return nil, fmt.Errorf("the access policy option %s: %w", policyExtension, err)
	}
	xd, ok := d.(protoreflect.ExtensionDescriptor)
	if !ok {
		return nil, fmt.Errorf("%s is not an extension", policyExtension)
	}
	c := &contracts{
		methods:  map[string]protoreflect.MethodDescriptor{},
		policy:   dynamicpb.NewExtensionType(xd),
		resolver: new(protoregistry.Types),
	}
	if err := c.resolver.RegisterExtension(c.policy); err != nil {
		return nil, err
	}
	for _, name := range req.GetFileToGenerate() {
		fd, err := files.FindFileByPath(name)
		if err != nil {
			return nil, err
		}
		// Every service's file declares its tags; one file declares the document's info.
		if doc, ok := proto.GetExtension(fd.Options(), options.E_Openapiv3Document).(*options.Document); ok && doc.GetInfo() != nil {
			if c.document != nil {
				return nil, fmt.Errorf("%s: only one file may set the openapiv3_document info", name)
			}
			c.document = doc
		}
		services := fd.Services()
		for i := range services.Len() {
			sd := services.Get(i)
			methods := sd.Methods()
			for j := range methods.Len() {
				md := methods.Get(j)
				c.methods[string(sd.Name())+"_"+string(md.Name())] = md
			}
		}
	}
	if c.document == nil {
		return nil, errors.New("no file sets the openapiv3_document info: the document's info, servers and security scheme come from it")
	}
	return c, nil
}

// additionalBinding is the suffix the upstream generator gives the operation ids of a
// method's further HTTP bindings.
var additionalBinding = regexp.MustCompile(`_[0-9]+$`)

func (c *contracts) method(operationID string) (protoreflect.MethodDescriptor, error) {
	if md, ok := c.methods[operationID]; ok {
		return md, nil
	}
	if md, ok := c.methods[additionalBinding.ReplaceAllString(operationID, "")]; ok {
		return md, nil
	}
	return nil, fmt.Errorf("operation %s matches no RPC", operationID)
}

// access is one RPC's policy: whether it is public, and the API-key scopes it needs.
type access struct {
	public bool
	scopes []string
}

func (c *contracts) access(md protoreflect.MethodDescriptor) (access, error) {
	raw, err := proto.Marshal(md.Options())
	if err != nil {
		return access{}, err
	}
	opts := &descriptorpb.MethodOptions{}
	if err := (proto.UnmarshalOptions{Resolver: c.resolver}).Unmarshal(raw, opts); err != nil {
		return access{}, err
	}
	// Has, not proto.HasExtension: the extension's containing message is the request's
	// descriptor of MethodOptions, not the compiled-in one HasExtension compares with.
	if !opts.ProtoReflect().Has(c.policy.TypeDescriptor()) {
		return access{}, fmt.Errorf("%s has no access policy", md.FullName())
	}
	policy, ok := proto.GetExtension(opts, c.policy).(protoreflect.Message)
	if !ok {
		return access{}, fmt.Errorf("%s: the access policy is not a message", md.FullName())
	}
	fields := policy.Descriptor().Fields()
	audience := fields.ByName("audience")
	value := audience.Enum().Values().ByNumber(policy.Get(audience).Enum())
	if value == nil {
		return access{}, fmt.Errorf("%s: unknown audience %d", md.FullName(), policy.Get(audience).Enum())
	}
	a := access{public: value.Name() == "AUDIENCE_PUBLIC"}
	list := policy.Get(fields.ByName("scopes")).List()
	for i := range list.Len() {
		a.scopes = append(a.scopes, list.Get(i).String())
	}
	return a, nil
}

// apply makes the merged document describe the REST door as it is.
func (c *contracts) apply(doc *object) error {
	scheme, err := c.documentParts(doc)
	if err != nil {
		return err
	}
	declaredTags := map[string]bool{}
	tags, _ := doc.vals["tags"].([]any)
	for _, t := range tags {
		tag, _ := t.(*object)
		if tag.str("description") == "" {
			return fmt.Errorf("tag %q has no description", tag.str("name"))
		}
		declaredTags[tag.str("name")] = true
	}
	paths := doc.obj("paths")
	used := map[string]bool{}
	for _, path := range paths.keys {
		item := paths.obj(path)
		for _, method := range item.keys {
			op := item.obj(method)
			if err := c.operation(path, method, op, scheme, declaredTags, doc.obj("components").obj("schemas")); err != nil {
				return fmt.Errorf("%s %s: %w", strings.ToUpper(method), path, err)
			}
			opTags, _ := op.vals["tags"].([]any)
			for _, t := range opTags {
				name, _ := t.(string)
				used[name] = true
			}
		}
	}
	// The upstream generator also lists a tag per service, which no operation uses once
	// every RPC names its own.
	tags = slices.DeleteFunc(tags, func(t any) bool {
		tag, _ := t.(*object)
		return !used[tag.str("name")]
	})
	doc.set("tags", tags)
	if err := mergeEquivalentPaths(paths); err != nil {
		return err
	}
	components := doc.obj("components")
	components.set("responses", errorResponseComponents())
	if !references(doc, httpBodyRef) {
		components.obj("schemas").del("google.api.HttpBody")
	}
	components.orderFirst("schemas", "responses", "securitySchemes")
	doc.orderFirst("openapi", "info", "servers", "tags", "paths", "components")
	return nil
}

// documentParts sets what the openapiv3_document option declares, and returns the name
// of the one security scheme that protected operations name.
func (c *contracts) documentParts(doc *object) (string, error) {
	d := c.document
	info := newObject()
	info.set("title", d.GetInfo().GetTitle())
	setIf(info, "summary", d.GetInfo().GetSummary())
	setIf(info, "description", d.GetInfo().GetDescription())
	setIf(info, "termsOfService", d.GetInfo().GetTermsOfService())
	if l := d.GetInfo().GetLicense(); l != nil {
		license := newObject()
		license.set("name", l.GetName())
		setIf(license, "identifier", l.GetIdentifier())
		setIf(license, "url", l.GetUrl())
		info.set("license", license)
	}
	info.set("version", d.GetInfo().GetVersion())
	doc.set("info", info)

	var servers []any
	for _, s := range d.GetServers() {
		server := newObject()
		server.set("url", s.GetUrl())
		setIf(server, "description", s.GetDescription())
		servers = append(servers, server)
	}
	if len(servers) > 0 {
		doc.set("servers", servers)
	}

	schemes := d.GetComponents().GetSecuritySchemes()
	if len(schemes) != 1 {
		return "", fmt.Errorf("openapiv3_document declares %d security schemes; the bearer scheme every protected RPC uses must be the only one", len(schemes))
	}
	rendered := newObject()
	var name string
	for n, s := range schemes {
		name = n
		scheme := newObject()
		switch s.GetType() {
		case options.SecurityScheme_TYPE_HTTP:
			scheme.set("type", "http")
			scheme.set("scheme", s.GetScheme())
			setIf(scheme, "bearerFormat", s.GetBearerFormat())
		default:
			return "", fmt.Errorf("security scheme %s: only TYPE_HTTP is rendered", n)
		}
		setIf(scheme, "description", s.GetDescription())
		rendered.set(n, scheme)
	}
	doc.obj("components").set("securitySchemes", rendered)
	return name, nil
}

func setIf(o *object, k, v string) {
	if v != "" {
		o.set(k, v)
	}
}

// operation applies to one operation what its RPC's descriptor and policy say.
func (c *contracts) operation(path, method string, op *object, scheme string, declaredTags map[string]bool, schemas *object) error {
	md, err := c.method(op.str("operationId"))
	if err != nil {
		return err
	}
	tags, _ := op.get("tags")
	list, _ := tags.([]any)
	if len(list) == 0 {
		return errors.New("no tag: give the RPC an openapiv3_operation tag declared in its file's openapiv3_document")
	}
	for _, t := range list {
		if name, _ := t.(string); !declaredTags[name] {
			return fmt.Errorf("tag %v is not declared (with its description) in openapiv3_document", t)
		}
	}
	splitSummary(op)

	a, err := c.access(md)
	if err != nil {
		return err
	}
	if a.public {
		op.set("security", []any{})
	} else {
		requirement := newObject()
		roles := []any{}
		for _, s := range a.scopes {
			roles = append(roles, s)
		}
		requirement.set(scheme, roles)
		op.set("security", []any{requirement})
	}

	if body := op.obj("requestBody"); body != nil {
		switch {
		case isHTTPBody(body):
			body.set("content", binaryContent())
			body.set("description", "The raw bytes, sent as they are.")
		case md.IsStreamingClient():
			body.obj("content").rename("application/json", ndjson)
			body.set("description", "Newline-delimited JSON: one message per line.")
		}
	}
	responses := op.obj("responses")
	if ok := responses.obj("200"); ok != nil {
		switch {
		case isHTTPBody(ok):
			ok.set("content", binaryContent())
		case md.IsStreamingServer():
			ok.obj("content").rename("application/json", ndjson)
			ok.set("description", ok.str("description")+
				` Newline-delimited JSON: one object per line, {"result": message}, and {"error": status} if the stream fails.`)
		}
	}
	if served := fileRoutes[op.str("operationId")]; served != nil {
		if err := served(op, md, schemas); err != nil {
			return err
		}
	}
	r := route{path: path, method: method, access: a, body: op.obj("requestBody") != nil}
	for _, e := range errorResponses {
		if e.applies(r) {
			ref := newObject()
			ref.set("$ref", "#/components/responses/"+e.name)
			responses.set(e.status, ref)
		}
	}
	responses.orderFirst("200", "206", "304", "400", "401", "403", "404", "409", "413", "416", "429", "default")
	op.orderFirst("tags", "summary", "description", "operationId", "security", "parameters", "requestBody", "responses")
	return nil
}

// splitSummary keeps the first sentence of a long summary as the summary, and the
// whole comment as the description: tools show summaries as one-line titles.
func splitSummary(op *object) {
	s := op.str("summary")
	if op.str("description") != "" {
		return
	}
	i := strings.Index(s, ". ")
	if j := strings.Index(s, ".\n"); j >= 0 && (i < 0 || j < i) {
		i = j
	}
	if i < 0 {
		return
	}
	op.set("summary", s[:i])
	op.set("description", s)
}

// isHTTPBody reports whether a request body or response is the upstream generator's
// JSON rendering of google.api.HttpBody.
func isHTTPBody(o *object) bool {
	schema := o.obj("content").obj("application/json").obj("schema")
	return schema != nil && schema.str("$ref") == httpBodyRef
}

// binaryContent is a body of raw bytes of any media type: the HttpBody's content type,
// or whatever the sender (Stripe, SendGrid) writes.
func binaryContent() *object {
	schema := newObject()
	schema.set("type", "string")
	schema.set("format", "binary")
	media := newObject()
	media.set("schema", schema)
	content := newObject()
	content.set("*/*", media)
	return content
}

// route is what decides which error responses an operation can answer.
type route struct {
	path, method string
	access       access
	// body is whether the operation takes a request body.
	body bool
}

// errorResponse is an HTTP status the edge answers for some gRPC codes, and which
// operations can answer it.
type errorResponse struct {
	status, name, description string
	header, headerDescription string
	applies                   func(route) bool
}

func always(route) bool { return true }

var errorResponses = []errorResponse{
	{
		status: "400", name: "BadRequest", applies: always,
		description: "The request is malformed or breaks a rule: INVALID_ARGUMENT, whose google.rpc.BadRequest detail names each field as the request wrote it, FAILED_PRECONDITION or OUT_OF_RANGE.",
	},
	{
		status: "401", name: "Unauthorized",
		description:       "No credential, or one that is malformed, expired or revoked: UNAUTHENTICATED.",
		header:            "WWW-Authenticate",
		headerDescription: "The Bearer challenge (RFC 6750), with error=\"invalid_token\" for a bad credential.",
		applies:           func(r route) bool { return !r.access.public },
	},
	{
		status: "403", name: "Forbidden",
		description: "The caller may not do this: PERMISSION_DENIED, such as a user without the admin role or an API key without a scope the operation needs.",
		applies:     func(r route) bool { return !r.access.public },
	},
	{
		status: "404", name: "NotFound",
		description: "No such resource, or not the caller's: NOT_FOUND.",
		applies:     func(r route) bool { return strings.Contains(r.path, "{") || !r.access.public },
	},
	{
		status: "409", name: "Conflict",
		description: "The request conflicts with the current state of what it changes: ALREADY_EXISTS or ABORTED.",
		applies:     func(r route) bool { return r.method != "get" },
	},
	{
		status: "413", name: "ContentTooLarge",
		description: "The request body is over the edge's limit for a request, or a file is over the size limit: RESOURCE_EXHAUSTED, whose google.rpc.ErrorInfo reason is ASSET_TOO_LARGE for a file. Retrying will not help.",
		applies:     func(r route) bool { return r.body },
	},
	{
		status: "429", name: "TooManyRequests", applies: always,
		description:       "A rate limit or a quota is spent: RESOURCE_EXHAUSTED.",
		header:            "Retry-After",
		headerDescription: "Seconds to wait before trying again.",
	},
}

// errorResponseComponents declares each error response once, with the body every error
// has: google.rpc.Status, {code, message, details}.
func errorResponseComponents() *object {
	out := newObject()
	for _, e := range errorResponses {
		schema := newObject()
		schema.set("$ref", "#/components/schemas/google.rpc.Status")
		media := newObject()
		media.set("schema", schema)
		content := newObject()
		content.set("application/json", media)
		r := newObject()
		r.set("description", e.description)
		if e.header != "" {
			hs := newObject()
			hs.set("type", "string")
			h := newObject()
			h.set("description", e.headerDescription)
			h.set("schema", hs)
			headers := newObject()
			headers.set(e.header, h)
			r.set("headers", headers)
		}
		r.set("content", content)
		out.set(e.name, r)
	}
	return out
}

// pathParameter matches one {parameter} of a path template.
var pathParameter = regexp.MustCompile(`\{[^}]*\}`)

// mergeEquivalentPaths joins paths that differ only by the names of their parameters,
// which OpenAPI counts as one path: the later path's operations move to the first,
// their parameters renamed to the first's names.
func mergeEquivalentPaths(paths *object) error {
	first := map[string]string{}
	for _, path := range slices.Clone(paths.keys) {
		shape := pathParameter.ReplaceAllString(path, "{}")
		keep, seen := first[shape]
		if !seen {
			first[shape] = path
			continue
		}
		names := map[string]string{}
		from, to := pathParameter.FindAllString(path, -1), pathParameter.FindAllString(keep, -1)
		for i := range from {
			names[strings.Trim(from[i], "{}")] = strings.Trim(to[i], "{}")
		}
		target, item := paths.obj(keep), paths.obj(path)
		for _, method := range item.keys {
			if _, dup := target.get(method); dup {
				return fmt.Errorf("%s %s and %s are the same operation path", strings.ToUpper(method), path, keep)
			}
			op := item.obj(method)
			params, _ := op.get("parameters")
			list, _ := params.([]any)
			for _, p := range list {
				if po, ok := p.(*object); ok && po.str("in") == "path" {
					if n, ok := names[po.str("name")]; ok {
						po.set("name", n)
					}
				}
			}
			target.set(method, op)
		}
		paths.del(path)
	}
	return nil
}

// references reports whether anything in v refers to ref.
func references(v any, ref string) bool {
	switch t := v.(type) {
	case *object:
		if t.str("$ref") == ref {
			return true
		}
		for _, k := range t.keys {
			if references(t.vals[k], ref) {
				return true
			}
		}
	case []any:
		if slices.ContainsFunc(t, func(e any) bool { return references(e, ref) }) {
			return true
		}
	}
	return false
}
