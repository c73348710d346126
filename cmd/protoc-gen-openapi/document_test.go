package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/pluginpb"

	accessv1 "github.com/backplane/backplane/gen/backplane/access/v1"
	assetv1 "github.com/backplane/backplane/gen/backplane/asset/v1"
	"github.com/backplane/backplane/gen/openapi"
	"github.com/backplane/backplane/services"
)

// The committed document (which make check-generated keeps equal to what this plugin
// writes) is checked against the compiled contracts, independently of how the plugin
// reads them: every HTTP binding is there, with its policy's security, its error
// responses, and its bodies as the REST door really reads and writes them.
func TestDocumentDescribesEveryHTTPBinding(t *testing.T) {
	t.Parallel()
	var doc map[string]any
	require.NoError(t, json.Unmarshal(openapi.Document, &doc))
	require.Equal(t, "3.1.0", doc["openapi"])

	ops := map[string]map[string]any{}
	for path, item := range doc["paths"].(map[string]any) {
		for method, op := range item.(map[string]any) {
			o := op.(map[string]any)
			o["method"], o["path"] = method, path
			ops[o["operationId"].(string)] = o
		}
	}
	described := map[string]bool{}
	for _, t := range doc["tags"].([]any) {
		tag := t.(map[string]any)
		if tag["description"] != "" {
			described[tag["name"].(string)] = true
		}
	}
	responses := doc["components"].(map[string]any)["responses"].(map[string]any)

	bindings := 0
	for _, api := range services.APIs() {
		sd := api.Service
		methods := sd.Methods()
		for i := range methods.Len() {
			md := methods.Get(i)
			rule, _ := proto.GetExtension(md.Options(), annotations.E_Http).(*annotations.HttpRule)
			if rule == nil {
				continue
			}
			policy, _ := proto.GetExtension(md.Options(), accessv1.E_Policy).(*accessv1.Policy)
			public := policy.GetAudience() == accessv1.Audience_AUDIENCE_PUBLIC
			for b := range len(rule.GetAdditionalBindings()) + 1 {
				bindings++
				id := string(sd.Name()) + "_" + string(md.Name())
				if b > 0 {
					id += "_" + string(rune('0'+b))
				}
				op := ops[id]
				require.NotNil(t, op, "%s is not described", id)

				if public {
					require.Equal(t, []any{}, op["security"], "%s needs no credential", id)
				} else {
					scopes := []any{}
					for _, s := range policy.GetScopes() {
						scopes = append(scopes, s)
					}
					require.Equal(t, []any{map[string]any{"bearer": scopes}}, op["security"], id)
				}

				for _, tag := range op["tags"].([]any) {
					require.True(t, described[tag.(string)], "%s: tag %v has no description", id, tag)
				}

				codes := op["responses"].(map[string]any)
				wantErrors := []string{"400", "429"}
				if !public {
					wantErrors = append(wantErrors, "401", "403")
				}
				for _, code := range wantErrors {
					require.Contains(t, codes, code, id)
					name := strings.TrimPrefix(codes[code].(map[string]any)["$ref"].(string), "#/components/responses/")
					body := responses[name].(map[string]any)["content"].(map[string]any)["application/json"].(map[string]any)
					require.Equal(t, "#/components/schemas/google.rpc.Status", body["schema"].(map[string]any)["$ref"], "%s %s", id, code)
				}

				ok := codes["200"].(map[string]any)["content"].(map[string]any)
				switch {
				case md.Output().FullName() == "google.api.HttpBody":
					require.Equal(t, map[string]any{"type": "string", "format": "binary"}, ok["*/*"].(map[string]any)["schema"], "%s answers raw bytes", id)
				case md.IsStreamingServer():
					require.Contains(t, ok, "application/x-ndjson", id)
					require.NotContains(t, ok, "application/json", id)
				default:
					require.Contains(t, ok, "application/json", id)
				}
				if md.IsStreamingClient() {
					require.Contains(t, op["requestBody"].(map[string]any)["content"], "application/x-ndjson", id)
				}
				if body := rule.GetBody(); body != "" && body != "*" {
					if f := md.Input().Fields().ByName(protoreflect.Name(body)); f.Message() != nil && f.Message().FullName() == "google.api.HttpBody" {
						require.Contains(t, op["requestBody"].(map[string]any)["content"], "*/*", "%s reads raw bytes", id)
					}
				}
			}
		}
	}
	require.Len(t, ops, bindings, "every operation is an HTTP binding of an edge RPC, and no more")

	shapes := map[string]string{}
	param := regexp.MustCompile(`\{[^}]*\}`)
	for path := range doc["paths"].(map[string]any) {
		shape := param.ReplaceAllString(path, "{}")
		require.NotContains(t, shapes, shape, "%s and %s differ only by parameter names", path, shapes[shape])
		shapes[shape] = path
	}
}

func TestMergeEquivalentPathsRenamesParameters(t *testing.T) {
	t.Parallel()
	paths, err := decodeObject([]byte(`{
		"/v1/assets/{asset_id}": {"get": {"operationId": "Get", "parameters": [{"name": "asset_id", "in": "path"}]}},
		"/v1/assets/{asset.id}": {"patch": {"operationId": "Update", "parameters": [{"name": "asset.id", "in": "path"}, {"name": "asset.id", "in": "query"}]}}
	}`))
	require.NoError(t, err)
	require.NoError(t, mergeEquivalentPaths(paths))
	out, err := json.Marshal(paths)
	require.NoError(t, err)
	require.JSONEq(t, `{"/v1/assets/{asset_id}": {
		"get": {"operationId": "Get", "parameters": [{"name": "asset_id", "in": "path"}]},
		"patch": {"operationId": "Update", "parameters": [{"name": "asset_id", "in": "path"}, {"name": "asset.id", "in": "query"}]}
	}}`, string(out))

	clash, err := decodeObject([]byte(`{"/a/{x}": {"get": {}}, "/a/{y}": {"get": {}}}`))
	require.NoError(t, err)
	require.ErrorContains(t, mergeEquivalentPaths(clash), "same operation path")
}

func TestMergeRefusesDisagreeingSchemas(t *testing.T) {
	t.Parallel()
	part := func(name, schema string) *pluginpb.CodeGeneratorResponse_File {
		return &pluginpb.CodeGeneratorResponse_File{
			Name:    proto.String(name),
			Content: proto.String(`{"openapi": "3.1.0", "paths": {}, "components": {"schemas": {"S": ` + schema + `}}}`),
		}
	}
	_, err := merge([]*pluginpb.CodeGeneratorResponse_File{part("a", `{"type": "object", "title": "x"}`), part("b", `{"title": "x", "type": "object"}`)})
	require.NoError(t, err, "the same schema in another key order is the same schema")
	_, err = merge([]*pluginpb.CodeGeneratorResponse_File{part("a", `{"type": "object"}`), part("b", `{"type": "string"}`)})
	require.ErrorContains(t, err, "schema S differs between files")
}

func TestObjectKeepsKeyOrder(t *testing.T) {
	t.Parallel()
	o, err := decodeObject([]byte(`{"z": 1, "a": {"y": [true, null, "s"], "b": 2.5}}`))
	require.NoError(t, err)
	out, err := json.Marshal(o)
	require.NoError(t, err)
	// Compared as text, not as JSON: the order is the point.
	require.Equal(t, `{"z":1,"a":{"y":[true,null,"s"],"b":2.5}}`, string(out)) //nolint:testifylint // JSONEq would ignore the key order under test
}

// The asset routes that gateway/assets.go serves itself are described as it serves them:
// the upload takes a browser's form (whose fields are the metadata's proto names, as the
// gateway reads them) as well as JSON messages, and downloads answer ranges and
// conditional requests rather than reading read_offset and read_limit.
func TestDocumentDescribesTheFileRoutesAsTheGatewayServesThem(t *testing.T) {
	t.Parallel()
	var doc map[string]any
	require.NoError(t, json.Unmarshal(openapi.Document, &doc))
	paths := doc["paths"].(map[string]any)
	op := func(path, method string) map[string]any {
		item, ok := paths[path].(map[string]any)
		require.True(t, ok, "%s is described", path)
		o, ok := item[method].(map[string]any)
		require.True(t, ok, "%s %s is described", method, path)
		return o
	}

	upload := op("/v1/assets:upload", "post")
	content := upload["requestBody"].(map[string]any)["content"].(map[string]any)
	require.Contains(t, content, "application/x-ndjson", "grpc-gateway still reads JSON messages when the body is not a form")
	require.Contains(t, content, "multipart/form-data", "the gateway takes a browser's form")
	form := content["multipart/form-data"].(map[string]any)["schema"].(map[string]any)
	require.Equal(t, "object", form["type"])
	require.Equal(t, []any{"file"}, form["required"])
	props := form["properties"].(map[string]any)
	file := props["file"].(map[string]any)
	require.Equal(t, "string", file["type"])
	require.Equal(t, "binary", file["format"])
	meta := (&assetv1.UploadAssetMetadata{}).ProtoReflect().Descriptor().Fields()
	want := map[string]bool{"file": true}
	for i := range meta.Len() {
		f := meta.Get(i)
		if f.IsMap() {
			require.Contains(t, form["patternProperties"], `^`+string(f.Name())+`\.`, "one form field per %s key", f.Name())
			continue
		}
		want[string(f.Name())] = true
		require.Contains(t, props, string(f.Name()), "the form field is the proto name the gateway reads")
		require.NotEmpty(t, props[string(f.Name())].(map[string]any)["description"], f.Name())
	}
	require.Len(t, props, len(want), "no field the gateway does not read")
	for _, o := range []map[string]any{upload, op("/v1/assets/{asset_id}/content", "put"), op("/v1/assets", "post")} {
		require.Equal(t, "#/components/responses/ContentTooLarge", o["responses"].(map[string]any)["413"].(map[string]any)["$ref"], o["operationId"])
	}

	for _, path := range []string{"/v1/assets/{asset_id}/content", "/v1/assets/{asset_id}/content:signed"} {
		get := op(path, "get")
		headers := map[string]bool{}
		for _, p := range get["parameters"].([]any) {
			param := p.(map[string]any)
			require.NotContains(t, []any{"readOffset", "readLimit", "acceptRedirect"}, param["name"], "%s: the gateway reads a Range header, not the query", path)
			if param["in"] == "header" {
				headers[param["name"].(string)] = true
			}
		}
		require.Equal(t, map[string]bool{"Range": true, "If-Range": true, "If-None-Match": true}, headers, path)
		responses := get["responses"].(map[string]any)
		for _, code := range []string{"200", "206"} {
			r := responses[code].(map[string]any)
			require.Equal(t, map[string]any{"type": "string", "format": "binary"}, r["content"].(map[string]any)["*/*"].(map[string]any)["schema"], "%s %s", path, code)
			require.Contains(t, r["headers"], "ETag", "%s %s", path, code)
		}
		require.Contains(t, responses["206"].(map[string]any)["headers"], "Content-Range", path)
		require.Contains(t, responses, "304", path)
		require.NotContains(t, responses["304"], "content", "%s: a 304 has no body", path)
		require.Contains(t, responses["416"].(map[string]any)["headers"], "Content-Range", path)
		require.Contains(t, responses["307"].(map[string]any)["headers"], "Location", path)
		require.NotContains(t, responses["307"], "content", "%s: a redirect has no body", path)
	}
}
