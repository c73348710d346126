package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	assetv1 "github.com/backplane/backplane/gen/backplane/asset/v1"
	"github.com/backplane/backplane/internal/disposition"
	"github.com/backplane/backplane/internal/grpccodec"
)

// The asset service's file routes are served here rather than by grpc-gateway, which
// reads a request body whole before calling and cannot set Content-Length, ETag or Range
// on a download. Each bridges the HTTP body into the service's gRPC stream, chunk by
// chunk, through the same interceptor chain as every other route (chainConn): nothing is
// buffered whole, so these routes take no body limit of the edge's; the service's own
// size limit ends an upload as soon as it is passed.

// The asset methods these routes call.
const (
	assetUploadMethod         = "/backplane.asset.v1.AssetService/UploadAsset"
	assetDownloadMethod       = "/backplane.asset.v1.AssetService/DownloadAssetContent"
	assetSignedDownloadMethod = "/backplane.asset.v1.AssetService/DownloadSignedAssetContent"
)

// The response headers of the asset service's downloads (services/asset/download.go).
const (
	assetHeaderSize        = "asset-size"
	assetHeaderSHA256      = "asset-sha256"
	assetHeaderFilename    = "asset-filename"
	assetHeaderContentType = "asset-content-type"
	assetHeaderRedirectURL = "asset-redirect-url"
)

// assetChunk is the size of each upload message: as large as the service's message
// limit allows (grpcserver.DefaultMaxMessageBytes, 1 MiB), less room for the message's
// framing, since each message costs a hop through the pipe, the chain and the transport
// whatever its size.
const assetChunk = 1<<20 - 1<<10

// assetReasonTooLarge is the ErrorInfo reason of a file over the size limit, which
// answers 413 rather than RESOURCE_EXHAUSTED's usual 429.
const assetReasonTooLarge = "ASSET_TOO_LARGE"

// Multipart form limits: the fields before the file part are small, and few.
const (
	formFieldMax  = 4 << 10
	formFieldsMax = 64
)

// assetRoutes serves the file routes of the asset service.
type assetRoutes struct {
	mux  *runtime.ServeMux
	conn *chainConn
	// rest is the REST door, which answers an upload that is not a form as grpc-gateway
	// does (a JSON stream of UploadAssetRequest messages).
	rest http.Handler
}

// mountAssets mounts the file routes on top when the asset service is among the APIs.
func mountAssets(top *http.ServeMux, mux *runtime.ServeMux, conn *chainConn, rest http.Handler) {
	if conn.routes[assetUploadMethod] == nil {
		return
	}
	a := &assetRoutes{mux: mux, conn: conn, rest: rest}
	top.HandleFunc("PUT /v1/assets/{id}/content", a.put)
	top.HandleFunc("POST /v1/assets:upload", a.form)
	top.HandleFunc("GET /v1/assets/{id}/content", a.get)
	top.HandleFunc("GET /v1/assets/{id}/content:signed", a.get)
}

// fail answers err as every REST route does (errorHandler: a file over the size limit
// is 413).
func (a *assetRoutes) fail(w http.ResponseWriter, r *http.Request, err error) {
	_, out := runtime.MarshalerForRequest(a.mux, r)
	runtime.HTTPError(r.Context(), a.mux, out, w, r, err)
}

// tooLarge reports whether err refuses a file over the size limit.
func tooLarge(err error) bool {
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted {
		return false
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetReason() == assetReasonTooLarge {
			return true
		}
	}
	return false
}

// statusWriter replaces the status of the response.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(int) { s.ResponseWriter.WriteHeader(s.code) }

// open starts a call of method with the request's credentials and metadata, as
// grpc-gateway would.
func (a *assetRoutes) open(ctx context.Context, r *http.Request, method, pattern string, desc *grpc.StreamDesc) (grpc.ClientStream, error) {
	ctx, err := runtime.AnnotateContext(ctx, a.mux, r, method, runtime.WithHTTPPathPattern(pattern))
	if err != nil {
		return nil, err
	}
	return a.conn.NewStream(ctx, desc, method)
}

var uploadDesc = &grpc.StreamDesc{StreamName: "UploadAsset", ClientStreams: true}

// put streams the raw body as the bytes of a PENDING asset.
func (a *assetRoutes) put(w http.ResponseWriter, r *http.Request) {
	first := &assetv1.UploadAssetRequest{Payload: &assetv1.UploadAssetRequest_AssetId{AssetId: r.PathValue("id")}}
	resp, err := a.upload(r, "/v1/assets/{asset_id}/content", first, r.Body)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.reply(w, r, &assetv1.UploadAssetContentResponse{Asset: resp.GetAsset()})
}

// upload sends first, then body in chunks, on an UploadAsset stream, and returns the
// answer. A send that fails means the service ended the stream: its status is the
// answer, and the rest of the body is left unread.
func (a *assetRoutes) upload(r *http.Request, pattern string, first *assetv1.UploadAssetRequest, body io.Reader) (*assetv1.UploadAssetResponse, error) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	cs, err := a.open(ctx, r, assetUploadMethod, pattern, uploadDesc)
	if err != nil {
		return nil, err
	}
	if err := cs.SendMsg(first); err == nil {
		if err := sendBody(cs, body); err != nil {
			return nil, err
		}
	}
	_ = cs.CloseSend()
	resp := &assetv1.UploadAssetResponse{}
	err = cs.RecvMsg(resp)
	return resp, err
}

// sendBody sends body's bytes as chunks until its end or until the service ends the
// stream (a nil error: the service's status follows). A body that cannot be read ends
// the upload with that error.
func sendBody(cs grpc.ClientStream, body io.Reader) error {
	for {
		// A fresh buffer per chunk: the message travels on while the next is read.
		buf := make([]byte, assetChunk)
		n, rerr := io.ReadFull(body, buf)
		if n > 0 && !sendChunk(cs, buf[:n]) {
			return nil
		}
		switch {
		case errors.Is(rerr, io.EOF), errors.Is(rerr, io.ErrUnexpectedEOF):
			return nil
		case rerr != nil:
			return status.Error(codes.InvalidArgument, "the request body could not be read to its end")
		}
	}
}

// sendChunk sends one chunk, reporting whether the stream took it.
func sendChunk(cs grpc.ClientStream, chunk []byte) bool {
	return cs.SendMsg(&assetv1.UploadAssetRequest{Payload: &assetv1.UploadAssetRequest_Chunk{Chunk: chunk}}) == nil
}

// form uploads a file from multipart/form-data: optional fields first (filename,
// content_type, size_bytes, sha256, metadata.<key>), then the file part, streamed.
func (a *assetRoutes) form(w http.ResponseWriter, r *http.Request) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "multipart/form-data" {
		a.rest.ServeHTTP(w, r)
		return
	}
	mr, err := r.MultipartReader()
	if err != nil {
		a.fail(w, r, badForm("the body must be multipart/form-data with a file part"))
		return
	}
	meta := &assetv1.UploadAssetMetadata{}
	fields := 0
	for {
		part, err := mr.NextPart()
		if err != nil {
			a.fail(w, r, badForm("the form has no file part"))
			return
		}
		if part.FileName() != "" || part.FormName() == "file" {
			if meta.GetFilename() == "" {
				meta.Filename = baseName(part.FileName())
			}
			if meta.GetContentType() == "" {
				meta.ContentType = part.Header.Get("Content-Type")
			}
			if meta.GetContentType() == "" {
				meta.ContentType = "application/octet-stream"
			}
			first := &assetv1.UploadAssetRequest{Payload: &assetv1.UploadAssetRequest_Metadata{Metadata: meta}}
			resp, err := a.upload(r, "/v1/assets:upload", first, part)
			if err != nil {
				a.fail(w, r, err)
				return
			}
			a.reply(w, r, resp)
			return
		}
		if fields++; fields > formFieldsMax {
			a.fail(w, r, badForm("the form has too many fields"))
			return
		}
		if err := formField(meta, part); err != nil {
			a.fail(w, r, err)
			return
		}
	}
}

// formField reads one small field of an upload form into meta.
func formField(meta *assetv1.UploadAssetMetadata, part *multipart.Part) error {
	b, err := io.ReadAll(io.LimitReader(part, formFieldMax+1))
	if err != nil || len(b) > formFieldMax {
		return badForm("form field " + part.FormName() + " is too long")
	}
	v := string(b)
	switch name := part.FormName(); {
	case name == "filename":
		meta.Filename = v
	case name == "content_type":
		meta.ContentType = v
	case name == "sha256":
		meta.Sha256 = v
	case name == "size_bytes":
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return badForm("size_bytes must be a whole number of bytes")
		}
		meta.SizeBytes = n
	case strings.HasPrefix(name, "metadata."):
		if meta.Metadata == nil {
			meta.Metadata = map[string]string{}
		}
		meta.Metadata[strings.TrimPrefix(name, "metadata.")] = v
	}
	return nil
}

func badForm(msg string) error { return status.Error(codes.InvalidArgument, msg) }

// baseName is a browser's file name without any directory (old browsers send paths).
func baseName(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	return name
}

// reply writes a message as the JSON every REST route answers with.
func (a *assetRoutes) reply(w http.ResponseWriter, r *http.Request, msg proto.Message) {
	_, out := runtime.MarshalerForRequest(a.mux, r)
	b, err := out.Marshal(msg)
	if err != nil {
		a.fail(w, r, status.Error(codes.Internal, "could not write the answer"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b) //nolint:gosec // protojson of the service's answer, served as application/json with nosniff

}

var downloadDesc = &grpc.StreamDesc{StreamName: "Download", ServerStreams: true}

// download is a download's call: the owner's, or a signed URL's.
type download struct {
	method, pattern string
	req             func(offset, limit int64) proto.Message
}

// get streams an asset's bytes with the headers a browser and a cache need: Content-Type
// and Content-Length, a strong ETag (the SHA-256), one Range, If-None-Match, and a
// Content-Disposition that names the file safely. Active content is an attachment,
// sandboxed.
//
// When the service serves downloads from the bucket (BACKPLANE_ASSET_DOWNLOAD_REDIRECT),
// a GET whose If-None-Match does not name the asset's ETag is answered 307 to the signed
// URL of the object the service gives instead: the bucket then serves the bytes, and
// any Range, with the content type and disposition the service forced onto its answer.
// HEAD is always answered here: a signed URL names one method.
func (a *assetRoutes) get(w http.ResponseWriter, r *http.Request) {
	d := a.downloadOf(r, r.Method == http.MethodGet)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	cs, md, err := a.startDownload(ctx, r, d, 0, 0)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	size, _ := strconv.ParseInt(first(md, assetHeaderSize), 10, 64)
	etag := `"` + first(md, assetHeaderSHA256) + `"`
	ctype := first(md, assetHeaderContentType)
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Accept-Ranges", "bytes")
	h.Set("Cache-Control", "private, no-cache")
	if etagMatches(r.Header.Get("If-None-Match"), etag) {
		cancel()
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if loc := first(md, assetHeaderRedirectURL); loc != "" {
		cancel()
		h.Del("ETag")
		h.Del("Accept-Ranges")
		// The URL expires within minutes: nothing may keep the redirect.
		h.Set("Cache-Control", "no-store")
		h.Set("Location", loc)
		w.WriteHeader(http.StatusTemporaryRedirect)
		return
	}
	filename, _ := url.PathUnescape(first(md, assetHeaderFilename))
	h.Set("Content-Type", ctype)
	h.Set("Content-Disposition", disposition.Of(filename, ctype))
	// Nothing in a file may run as our origin's page, whatever a browser makes of it.
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; media-src 'self'")
	code := http.StatusOK
	length := size
	if spec := r.Header.Get("Range"); spec != "" && ifRange(r.Header.Get("If-Range"), etag) {
		start, end, ok := parseRange(spec, size)
		if !ok {
			cancel()
			h.Set("Content-Range", fmt.Sprintf("bytes */%d", size))
			h.Del("Content-Disposition")
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		// The first call said what the file is; the second reads the range.
		cancel()
		ctx, cancel = context.WithCancel(r.Context())
		defer cancel()
		cs, _, err = a.startDownload(ctx, r, d, start, end-start+1)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		code, length = http.StatusPartialContent, end-start+1
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end, size))
	}
	h.Set("Content-Length", strconv.FormatInt(length, 10))
	w.WriteHeader(code)
	if r.Method == http.MethodHead {
		return
	}
	for {
		msg := &httpbody.HttpBody{}
		err := cs.RecvMsg(msg)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			// The status line is gone: cut the connection, so that the client sees a short
			// body rather than a complete one.
			panic(http.ErrAbortHandler)
		}
		_, err = w.Write(msg.GetData())
		// Written: the bytes go back to the codec's pool for the next chunk.
		grpccodec.Recycle(msg)
		if err != nil {
			return
		}
	}
}

// downloadOf says which call serves r: a signed URL's, or the owner's; redirect says
// whether the call may answer with a URL of the bucket instead of the bytes.
func (a *assetRoutes) downloadOf(r *http.Request, redirect bool) download {
	id := r.PathValue("id")
	if strings.HasSuffix(r.URL.Path, ":signed") {
		q := r.URL.Query()
		expires, _ := strconv.ParseInt(q.Get("expires"), 10, 64)
		return download{method: assetSignedDownloadMethod, pattern: "/v1/assets/{asset_id}/content:signed", req: func(offset, limit int64) proto.Message {
			return &assetv1.DownloadSignedAssetContentRequest{AssetId: id, Expires: expires, Signature: q.Get("signature"), ReadOffset: offset, ReadLimit: limit, AcceptRedirect: redirect}
		}}
	}
	return download{method: assetDownloadMethod, pattern: "/v1/assets/{asset_id}/content", req: func(offset, limit int64) proto.Message {
		return &assetv1.DownloadAssetContentRequest{AssetId: id, ReadOffset: offset, ReadLimit: limit, AcceptRedirect: redirect}
	}}
}

// startDownload opens a download and waits for its headers, which describe the whole
// file; a refusal arrives as the error.
func (a *assetRoutes) startDownload(ctx context.Context, r *http.Request, d download, offset, limit int64) (grpc.ClientStream, metadata.MD, error) {
	cs, err := a.open(ctx, r, d.method, d.pattern, downloadDesc)
	if err != nil {
		return nil, nil, err
	}
	if err := cs.SendMsg(d.req(offset, limit)); err != nil {
		return nil, nil, err
	}
	if err := cs.CloseSend(); err != nil {
		return nil, nil, err
	}
	md, err := cs.Header()
	if err == nil && len(md.Get(assetHeaderSize)) == 0 {
		// No headers: the service refused before sending any; its status says why.
		err = cs.RecvMsg(&httpbody.HttpBody{})
		if err == nil || errors.Is(err, io.EOF) {
			err = status.Error(codes.Unavailable, "the asset service sent no file")
		}
	}
	if err != nil {
		return nil, nil, err
	}
	return cs, md, nil
}

func first(md metadata.MD, key string) string {
	if v := md.Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// etagMatches reports whether an If-None-Match header names etag (or is "*").
func etagMatches(header, etag string) bool {
	for v := range strings.SplitSeq(header, ",") {
		v = strings.TrimPrefix(strings.TrimSpace(v), "W/")
		if v == etag || v == "*" {
			return true
		}
	}
	return false
}

// ifRange reports whether a Range applies: no If-Range, or one naming the current ETag.
func ifRange(header, etag string) bool {
	return header == "" || header == etag
}

// parseRange reads a single byte range ("bytes=a-b", "bytes=a-", "bytes=-n") of a file
// of size bytes, as the first and last byte to send. Several ranges, or a range that
// starts past the end, are not satisfiable.
func parseRange(spec string, size int64) (start, end int64, ok bool) {
	spec, found := strings.CutPrefix(spec, "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false
	}
	from, to, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false
	}
	if from == "" { // the last n bytes
		n, err := strconv.ParseInt(to, 10, 64)
		if err != nil || n <= 0 {
			return 0, 0, false
		}
		return max(0, size-n), size - 1, true
	}
	start, err := strconv.ParseInt(from, 10, 64)
	if err != nil || start < 0 || start >= size {
		return 0, 0, false
	}
	end = size - 1
	if to != "" {
		if end, err = strconv.ParseInt(to, 10, 64); err != nil || end < start {
			return 0, 0, false
		}
		end = min(end, size-1)
	}
	return start, end, true
}
