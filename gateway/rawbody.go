package gateway

import (
	"io"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/api/httpbody"
)

// rawBodyMarshaler hands request bodies bound to a google.api.HttpBody field to the
// service byte for byte. grpc-gateway passes raw bytes only for HttpBody responses; on
// requests it would JSON-decode them, and webhook signatures are computed over the exact
// bytes the sender wrote.
type rawBodyMarshaler struct {
	*runtime.HTTPBodyMarshaler
}

// StreamContentType is the Content-Type of a streamed response: the bytes' own type for
// a stream of google.api.HttpBody, newline-delimited JSON for any other, as the OpenAPI
// document says.
func (m rawBodyMarshaler) StreamContentType(v any) string {
	if _, ok := v.(*httpbody.HttpBody); ok {
		return m.ContentType(v)
	}
	return "application/x-ndjson"
}

func (m rawBodyMarshaler) NewDecoder(r io.Reader) runtime.Decoder {
	inner := m.HTTPBodyMarshaler.NewDecoder(r)
	return runtime.DecoderFunc(func(v any) error {
		var body *httpbody.HttpBody
		switch target := v.(type) {
		case *httpbody.HttpBody:
			body = target
		case **httpbody.HttpBody: // the generated code decodes into the message's field
			if *target == nil {
				*target = &httpbody.HttpBody{}
			}
			body = *target
		default:
			return inner.Decode(v)
		}
		data, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		body.Data = data
		return nil
	})
}
