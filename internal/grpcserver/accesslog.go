package grpcserver

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	accessv1 "github.com/backplane/backplane/gen/backplane/access/v1"
	"github.com/backplane/backplane/internal/access"
	"github.com/backplane/backplane/internal/identity"
)

// accessLog writes one line per finished call, at a level that follows the status code:
// the client's mistakes are not our errors.
//
// A request that enters at the edge and is relayed to a service would otherwise be
// logged twice, once by each. The edge's line is the one that describes the request as
// the client saw it, so a service logs a call relayed by one of our services (its
// service credential checked by the authentication step) at debug level, unless the
// call failed on our side (warn and error lines are always written). Direct calls,
// refused calls and INTERNAL calls between services, which nothing else logs, keep
// their info line.
//
// The line is built from typed attributes (slog.LogAttrs), with no maps or reflection,
// and skipped altogether when its level is not enabled.
type accessLog struct {
	log *slog.Logger
	// methods caches, per full method, its logger with the service and method names
	// bound (formatted once, not on every line) and whether it can be relayed. Only
	// methods declared in the protos linked into the binary are kept, so the names a
	// client makes up never grow it.
	methods sync.Map
}

// methodLog is what the access log keeps per method.
type methodLog struct {
	log *slog.Logger
	// relayable: any audience but INTERNAL. A service credential on an INTERNAL call
	// means the service called for itself, and nothing else logs that call.
	relayable bool
}

// callNote is what the inner steps of the chain tell the access log about a call.
type callNote struct {
	// relayedBy is the service that relayed the call for a client, as the
	// authentication step established it; empty for a direct call.
	relayedBy string
}

type callNoteKey struct{}

// unary logs a unary call.
func (a *accessLog) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	note := &callNote{}
	resp, err := handler(context.WithValue(ctx, callNoteKey{}, note), req)
	a.finish(ctx, info.FullMethod, start, note, err)
	return resp, err
}

// stream logs a streaming call when it ends.
func (a *accessLog) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	note := &callNote{}
	ctx := ss.Context()
	err := handler(srv, &contextStream{ServerStream: ss, ctx: context.WithValue(ctx, callNoteKey{}, note)})
	a.finish(ctx, info.FullMethod, start, note, err)
	return err
}

// noteUnary runs right after the authentication step and records for the access log
// which service, if any, relayed the call.
func (a *accessLog) noteUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	a.note(ctx, info.FullMethod)
	return handler(ctx, req)
}

// noteStream is noteUnary for streams.
func (a *accessLog) noteStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	a.note(ss.Context(), info.FullMethod)
	return handler(srv, ss)
}

func (a *accessLog) note(ctx context.Context, fullMethod string) {
	name, ok := identity.ServiceFromContext(ctx)
	if !ok {
		return
	}
	n, _ := ctx.Value(callNoteKey{}).(*callNote)
	if n == nil || !a.method(fullMethod).relayable {
		return
	}
	n.relayedBy = name
}

// method returns fullMethod's entry, building it on first use.
func (a *accessLog) method(fullMethod string) *methodLog {
	if v, ok := a.methods.Load(fullMethod); ok {
		if m, ok := v.(*methodLog); ok {
			return m
		}
	}
	service, method := splitMethod(fullMethod)
	p := access.Lookup(fullMethod)
	m := &methodLog{
		log:       a.log.With(slog.String("grpc.service", service), slog.String("grpc.method", method)),
		relayable: p != nil && p.GetAudience() != accessv1.Audience_AUDIENCE_INTERNAL,
	}
	if _, declared := access.Method(fullMethod); declared {
		a.methods.Store(fullMethod, m)
	}
	return m
}

// finish writes the call's line.
func (a *accessLog) finish(ctx context.Context, fullMethod string, start time.Time, note *callNote, err error) {
	code := codes.OK
	var st *status.Status
	if err != nil {
		st = status.Convert(err)
		code = st.Code()
	}
	level := codeLevel(code)
	// A stream ended by a draining server (ours, or a service's relayed by the front
	// door) is an orderly end of shutdown, not a failure: the client reconnects
	// elsewhere. The status's ErrorInfo says so, whatever its message.
	if level == slog.LevelError && isShuttingDown(st) {
		level = slog.LevelInfo
	}
	if level == slog.LevelInfo && note.relayedBy != "" {
		level = slog.LevelDebug
	}
	if !a.log.Enabled(ctx, level) {
		return
	}
	// Five attributes at most, with the three the log handler adds from the context
	// (trace, span and request ids): what slog.Record holds without allocating more.
	attrs := make([]slog.Attr, 0, 5)
	attrs = append(attrs,
		slog.String("grpc.code", code.String()),
		// Milliseconds as a string, as operators' queries know it; slog writes a float
		// through encoding/json, which costs more than the whole rest of the line.
		slog.String("grpc.time_ms", strconv.FormatFloat(float64(time.Since(start).Microseconds())/1000, 'f', 3, 64)),
	)
	if st != nil {
		// The client-safe message: a hidden cause is logged by normalize, once.
		attrs = append(attrs, slog.String("grpc.error", st.Message()))
	}
	if note.relayedBy != "" {
		attrs = append(attrs, slog.String("grpc.relayed_by", note.relayedBy))
	}
	a.method(fullMethod).log.LogAttrs(ctx, level, "finished call", attrs...)
}

// codeLevel is the level of a call's line given its status code.
func codeLevel(code codes.Code) slog.Level {
	switch code {
	case codes.Internal, codes.Unknown, codes.DataLoss, codes.Unavailable:
		return slog.LevelError
	case codes.DeadlineExceeded:
		return slog.LevelWarn
	default:
		return slog.LevelInfo
	}
}

// splitMethod splits "/pkg.Service/Method" into its service and method names.
func splitMethod(fullMethod string) (service, method string) {
	s := strings.TrimPrefix(fullMethod, "/")
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		return s[:i], s[i+1:]
	}
	return "unknown", s
}
