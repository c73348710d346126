package logging

import (
	"context"
	"log/slog"
	"slices"

	"go.opentelemetry.io/otel/trace"

	"github.com/backplane/backplane/internal/requestid"
)

// Keys of the correlation attributes added to every record.
const (
	traceIDKey       = "trace_id"
	spanIDKey        = "span_id"
	requestIDAttrKey = "request_id"
)

// contextHandler adds trace_id, span_id and request_id from the context to each
// record, always at the top level of the output.
//
// Adding them to the record is not enough once Logger.WithGroup has been called: the
// wrapped handler would then nest them inside the group, and log queries on trace_id
// would miss those lines. So the handler remembers the calls made after the first
// group and, when it has ids to add, replays them on top of a handler that has the ids
// bound before any group. Loggers without groups, or contexts without ids, take the
// direct path.
type contextHandler struct {
	// full is the wrapped handler with every WithAttrs and WithGroup applied.
	full slog.Handler
	// base is the wrapped handler with the WithAttrs calls made before the first
	// WithGroup; it equals full while no group is open.
	base slog.Handler
	// replay re-applies, in order, the calls made since the first WithGroup.
	replay []func(slog.Handler) slog.Handler
}

func newContextHandler(next slog.Handler) *contextHandler {
	return &contextHandler{full: next, base: next}
}

// Enabled reports whether the wrapped handler writes records at level.
func (h *contextHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.full.Enabled(ctx, level)
}

// Handle adds the correlation attributes of ctx and passes the record on.
func (h *contextHandler) Handle(ctx context.Context, r slog.Record) error {
	// On the stack: every request logs through here, and the ids are copied into the
	// record.
	var buf [3]slog.Attr
	ids := appendCorrelation(ctx, buf[:0])
	if len(ids) == 0 {
		return h.full.Handle(ctx, r)
	}
	if len(h.replay) == 0 {
		r.AddAttrs(ids...)
		return h.full.Handle(ctx, r)
	}
	next := h.base.WithAttrs(slices.Clone(ids))
	for _, apply := range h.replay {
		next = apply(next)
	}
	return next.Handle(ctx, r)
}

// WithAttrs returns a handler whose records also carry attrs.
func (h *contextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	out := &contextHandler{full: h.full.WithAttrs(attrs), base: h.base}
	if len(h.replay) == 0 {
		out.base = out.full
		return out
	}
	out.replay = append(slices.Clip(h.replay), func(next slog.Handler) slog.Handler {
		return next.WithAttrs(attrs)
	})
	return out
}

// WithGroup returns a handler that nests later attributes under name.
func (h *contextHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &contextHandler{
		full: h.full.WithGroup(name),
		base: h.base,
		// Clip so that sibling handlers derived from h never share a backing array.
		replay: append(slices.Clip(h.replay), func(next slog.Handler) slog.Handler {
			return next.WithGroup(name)
		}),
	}
}

// appendCorrelation appends the ids carried by ctx to ids, omitting those it lacks so
// that lines logged outside a request or span carry no empty fields.
func appendCorrelation(ctx context.Context, ids []slog.Attr) []slog.Attr {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		ids = append(ids,
			slog.String(traceIDKey, sc.TraceID().String()),
			slog.String(spanIDKey, sc.SpanID().String()),
		)
	}
	if id := requestid.FromContext(ctx); id != "" {
		ids = append(ids, slog.String(requestIDAttrKey, id))
	}
	return ids
}
