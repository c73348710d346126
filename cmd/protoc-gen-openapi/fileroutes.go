package main

import (
	"fmt"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// The gateway serves the asset service's file routes itself (gateway/assets.go), not
// through grpc-gateway, so the HTTP rule alone does not say what they take and answer:
// an upload also takes a browser's multipart form, and a download answers Range,
// If-Range and If-None-Match with 206, 304 and 416 instead of reading the RPC's
// read_offset and read_limit from the query. fileRoutes describes them as served.
var fileRoutes = map[string]func(op *object, md protoreflect.MethodDescriptor, schemas *object) error{
	"AssetService_UploadAsset":                formUpload,
	"AssetService_DownloadAssetContent":       rangedDownload,
	"AssetService_DownloadSignedAssetContent": rangedDownload,
}

// formField is the form's file part: the gateway takes the part named "file", or the
// first with a filename.
const formFileField = "file"

// formUpload adds the multipart/form-data body a browser's form sends beside the
// newline-delimited JSON messages that grpc-gateway still reads when the body is not a
// form. The form's fields are the first message's metadata, by their proto names
// (gateway/assets.go formField), a map field as one field per key, "<name>.<key>".
func formUpload(op *object, md protoreflect.MethodDescriptor, schemas *object) error {
	meta := md.Input().Fields().ByName("metadata")
	if meta == nil || meta.Message() == nil {
		return fmt.Errorf("%s has no metadata message for the form's fields", md.Input().FullName())
	}
	rendered := schemas.obj(string(meta.Message().FullName())).obj("properties")
	if rendered == nil {
		return fmt.Errorf("schema %s has no properties", meta.Message().FullName())
	}
	properties, patterns := newObject(), newObject()
	properties.set(formFileField, schemaOf("string", "binary",
		"The file's bytes. Its part's filename and Content-Type stand for filename and content_type when those fields are not sent."))
	fields := meta.Message().Fields()
	for i := range fields.Len() {
		f := fields.Get(i)
		description := rendered.obj(f.JSONName()).str("description")
		switch {
		case f.IsMap() && f.MapValue().Kind() == protoreflect.StringKind:
			patterns.set(fmt.Sprintf(`^%s\.`, f.Name()), schemaOf("string", "", description+" One field per label: "+string(f.Name())+".<key>."))
		case f.IsList() || f.IsMap() || f.Message() != nil:
			return fmt.Errorf("%s: a form has no field for %s", meta.Message().FullName(), f.Kind())
		case f.Kind() == protoreflect.StringKind:
			properties.set(string(f.Name()), schemaOf("string", "", description))
		case f.Kind() == protoreflect.Int64Kind:
			properties.set(string(f.Name()), schemaOf("integer", "int64", description))
		default:
			return fmt.Errorf("%s.%s: a form field of kind %s is not rendered", meta.Message().FullName(), f.Name(), f.Kind())
		}
	}
	schema := newObject()
	schema.set("type", "object")
	schema.set("required", []any{formFileField})
	schema.set("properties", properties)
	if len(patterns.keys) > 0 {
		schema.set("patternProperties", patterns)
	}
	media := newObject()
	media.set("schema", schema)

	body := op.obj("requestBody")
	content := newObject()
	content.set("multipart/form-data", media)
	for _, k := range body.obj("content").keys {
		content.set(k, body.obj("content").vals[k])
	}
	body.set("content", content)
	body.set("description", "A form, as a browser's <form enctype=\"multipart/form-data\"> sends it: the fields, "+
		"then the file part, whose bytes are streamed to the service as they arrive (fields after the file part are "+
		"not read). Or, with any other Content-Type, newline-delimited JSON: one message per line, the metadata first.")
	return nil
}

// downloadQueryIgnored are the RPC's fields that the download routes do not read from
// the query: a Range header asks for part of the file instead, and the gateway itself
// accepts a redirect for a GET.
var downloadQueryIgnored = map[string]bool{"readOffset": true, "readLimit": true, "acceptRedirect": true}

// rangedDownload describes a download as gateway/assets.go serves it: one byte range,
// conditional on the ETag (the SHA-256), and HEAD for the headers alone.
func rangedDownload(op *object, _ protoreflect.MethodDescriptor, _ *object) error {
	list, _ := op.vals["parameters"].([]any)
	var params []any
	for _, p := range list {
		if po, ok := p.(*object); ok && po.str("in") == "query" && downloadQueryIgnored[po.str("name")] {
			continue
		}
		params = append(params, p)
	}
	params = append(params,
		headerParameter("Range", `One byte range, "bytes=first-last", "bytes=first-" or "bytes=-suffix": the answer is 206 with that part. Several ranges are not served (416).`),
		headerParameter("If-Range", "The ETag the client holds: the Range applies only while the asset still has it, else the whole file is sent."),
		headerParameter("If-None-Match", "ETags the client holds: when one is the asset's, the answer is 304 with no body."),
	)
	op.set("parameters", params)
	op.set("description", op.str("description")+"\n\nHEAD answers with the same headers and no body.")

	responses := op.obj("responses")
	whole := responses.obj("200")
	whole.set("description", "The whole file, with the asset's content type.")
	whole.set("headers", headers(
		"ETag", "The SHA-256 of the bytes, quoted: a strong validator for If-None-Match and If-Range.",
		"Accept-Ranges", `"bytes".`,
		"Content-Disposition", "inline, or attachment for content a browser would run (HTML, SVG, XML, JavaScript, PDF), with the file's name.",
	))
	whole.orderFirst("description", "headers", "content")

	part := newObject()
	part.set("description", "The byte range the Range header asked for.")
	part.set("headers", headers(
		"Content-Range", `"bytes first-last/size".`,
		"ETag", "The SHA-256 of the bytes, quoted.",
	))
	part.set("content", binaryContent())
	responses.set("206", part)

	notModified := newObject()
	notModified.set("description", "The asset still has an ETag that If-None-Match named: the client's copy is current.")
	notModified.set("headers", headers("ETag", "The SHA-256 of the bytes, quoted."))
	responses.set("304", notModified)

	redirect := newObject()
	redirect.set("description", "Only when the server serves downloads from its bucket (BACKPLANE_ASSET_DOWNLOAD_REDIRECT) and the bucket signs URLs (S3, R2, MinIO, GCS): "+
		"Location is a short-lived signed URL of the bucket's object, whose answer carries the file's Content-Type and Content-Disposition. "+
		"Follow it with the same Range and If-Range; the bucket answers them, with an ETag of its own. An If-None-Match naming this route's ETag is still answered 304 here; HEAD is never redirected.")
	redirect.set("headers", headers(
		"Location", "The signed URL of the bucket's object; it expires within minutes (BACKPLANE_ASSET_DOWNLOAD_REDIRECT_EXPIRY).",
		"Cache-Control", `"no-store".`,
	))
	responses.set("307", redirect)

	unsatisfiable := newObject()
	unsatisfiable.set("description", "The Range is not one range that starts inside the file.")
	unsatisfiable.set("headers", headers("Content-Range", `"bytes */size": the file's length.`))
	responses.set("416", unsatisfiable)
	return nil
}

func schemaOf(typ, format, description string) *object {
	s := newObject()
	s.set("type", typ)
	setIf(s, "format", format)
	setIf(s, "description", description)
	return s
}

func headerParameter(name, description string) *object {
	p := newObject()
	p.set("name", name)
	p.set("in", "header")
	p.set("description", description)
	p.set("schema", schemaOf("string", "", ""))
	return p
}

// headers is a response's headers object from name, description pairs.
func headers(pairs ...string) *object {
	out := newObject()
	for i := 0; i+1 < len(pairs); i += 2 {
		h := newObject()
		h.set("description", pairs[i+1])
		h.set("schema", schemaOf("string", "", ""))
		out.set(pairs[i], h)
	}
	return out
}
