package gateway

import (
	"context"
	"errors"
	"io"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/backplane/backplane/internal/clientip"
)

// forwardable reports whether a metadata key travels to the service. Keys that describe
// the client's connection to the edge, not the request, stay behind (the edge's own
// connection sets its own), and so do keys in our internal namespace, which only the
// edge may set.
func forwardable(key string) bool {
	switch {
	case strings.HasPrefix(key, ":"), strings.HasPrefix(key, "grpc-"), strings.HasPrefix(key, "x-backplane-"):
		return false
	case key == "content-type", key == "user-agent", key == "te", key == "connection", key == "host":
		return false
	}
	return true
}

// outgoingContext copies the caller's metadata to the call to the service, plus what the
// edge established about the caller. The caller's deadline travels with ctx.
func outgoingContext(ctx context.Context) context.Context {
	in, _ := metadata.FromIncomingContext(ctx)
	out := metadata.MD{}
	for k, v := range in {
		if forwardable(k) {
			out[k] = v
		}
	}
	if ua := in.Get("user-agent"); len(ua) > 0 {
		out.Set("x-forwarded-user-agent", ua...)
	}
	if ip := clientIPFrom(ctx); ip != "" {
		out.Set(clientip.MetadataKey, ip)
	}
	return metadata.NewOutgoingContext(ctx, out)
}

// invoke forwards one unary call, relaying the service's headers and trailers. The
// caller's deadline travels on, capped so that no client can pin edge resources longer
// than the edge allows.
func (r *route) invoke(ctx context.Context, req, reply proto.Message) error {
	ctx, cancel := context.WithTimeout(ctx, r.maxTimeout)
	defer cancel()
	var header, trailer metadata.MD
	err := r.conn.Invoke(outgoingContext(ctx), r.fullMethod, req, reply, grpc.Header(&header), grpc.Trailer(&trailer))
	_ = grpc.SetHeader(ctx, header)
	_ = grpc.SetTrailer(ctx, trailer)
	return err
}

// pump forwards one streaming call between ss (the client's side) and the service.
func (r *route) pump(ss grpc.ServerStream) error {
	ctx, cancel := context.WithCancel(ss.Context())
	defer cancel()
	cs, err := r.conn.NewStream(outgoingContext(ctx), r.streamDesc(), r.fullMethod)
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
