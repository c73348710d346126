package gateway

import (
	"context"
	"errors"
	"io"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/backplane/backplane/internal/authn"
	"github.com/backplane/backplane/internal/clientip"
	"github.com/backplane/backplane/internal/requestid"
)

// forwarded are the metadata keys that travel from the client to the service: what some
// service reads, and nothing else. Anything a client adds (a REST client's
// Grpc-Metadata-* headers, a gRPC client's custom keys, kilobytes of padding) stays at the
// edge, so that services see only what they are written to handle, and a client cannot
// reach a service with keys in our internal namespace, which only the edge may set.
var forwarded = map[string]bool{
	"authorization":                          true, // the caller's token or API key, which the edge's vouch speaks for
	requestid.MetadataKey:                    true,
	"idempotency-key":                        true,
	"stripe-signature":                       true, // webhook signatures, verified by their owners over the raw body
	"x-twilio-email-event-webhook-signature": true,
	"x-twilio-email-event-webhook-timestamp": true,
}

// maxForwardedUserAgent bounds the user agent passed on for the sessions list.
const maxForwardedUserAgent = 512

// outgoingContext builds the call to the service's metadata: the forwarded keys the
// caller sent, plus what the edge established about the caller (its address, its user
// agent). The caller's deadline travels with ctx, and the trace context with the edge's
// own span.
func outgoingContext(ctx context.Context) context.Context {
	// Key by key, not through a copy of all the caller's metadata: this runs on every
	// call, and the caller may send much that is not forwarded.
	out := make(metadata.MD, 4)
	for k := range forwarded {
		if v := metadata.ValueFromIncomingContext(ctx, k); len(v) > 0 {
			out[k] = v
		}
	}
	for _, k := range []string{"grpcgateway-user-agent", "user-agent"} {
		if ua := metadata.ValueFromIncomingContext(ctx, k); len(ua) > 0 {
			out.Set("x-forwarded-user-agent", truncate(ua[0], maxForwardedUserAgent))
			break
		}
	}
	if ip := clientIPFrom(ctx); ip != "" {
		out.Set(clientip.MetadataKey, ip)
	}
	// The edge's word for the caller it authenticated, so that the service need not
	// verify the same credential again (authn.VouchHeader).
	if v := authn.VouchFromContext(ctx); v != "" {
		out.Set(authn.VouchHeader, v)
	}
	return metadata.NewOutgoingContext(ctx, out)
}

// truncate cuts s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// invoke forwards one unary call, relaying the service's headers and trailers. The
// caller's deadline travels on, capped so that no client can pin edge resources longer
// than the edge allows; a call the cap cuts short answers UNAVAILABLE (callcap.go).
func (r *route) invoke(ctx context.Context, req, reply proto.Message) error {
	client := ctx
	ctx, cancel := context.WithTimeout(ctx, r.maxTimeout)
	defer cancel()
	var header, trailer metadata.MD
	err := r.conn.Invoke(outgoingContext(ctx), r.fullMethod, req, reply, grpc.Header(&header), grpc.Trailer(&trailer))
	// Only what there is: each of these copies all the call's metadata set so far.
	if len(header) > 0 {
		_ = grpc.SetHeader(ctx, header)
	}
	if len(trailer) > 0 {
		_ = grpc.SetTrailer(ctx, trailer)
	}
	return cappedCallError(client, ctx, err)
}

// pump forwards one streaming call between ss (the client's side) and the service.
func (r *route) pump(ss grpc.ServerStream) error {
	ctx, cancel := context.WithCancel(ss.Context())
	defer cancel()
	cs, err := r.conn.NewStream(outgoingContext(ctx), r.streamDesc(), r.fullMethod, r.streamOpts...)
	if err != nil {
		return err
	}

	// Client to service. A send error means the service ended the stream; its status
	// arrives through RecvMsg below, so it is not reported from here.
	go func() {
		for {
			msg := r.in.New().Interface()
			if err := ss.RecvMsg(msg); err != nil {
				if errors.Is(err, io.EOF) {
					_ = cs.CloseSend()
				} else {
					cancel()
				}
				return
			}
			if err := cs.SendMsg(msg); err != nil {
				return
			}
		}
	}()

	// Service to client.
	if header, err := cs.Header(); err == nil && len(header) > 0 {
		if err := ss.SendHeader(header); err != nil {
			return err
		}
	}
	for {
		msg := r.out.New().Interface()
		if err := cs.RecvMsg(msg); err != nil {
			ss.SetTrailer(cs.Trailer())
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := ss.SendMsg(msg); err != nil {
			return err
		}
	}
}
