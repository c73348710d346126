package database

import (
	"context"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
)

// queryTracer hands otelpgx the events worth a span: a query, a batch, a copy, a new
// connection. It leaves out the two otelpgx would also trace, which turned one
// sign-up into 27 spans: pool acquisition (a "pool.acquire" span before every query;
// the wait shows in the pool statistics instead) and statement preparation (a
// nested "prepare" span under the first run of each query on each connection, whose
// time the query's own span already includes). pgx looks for each tracer interface
// by type assertion, so not implementing pgx.PrepareTracer and
// pgxpool.AcquireTracer is what switches those events off.
type queryTracer struct {
	t *otelpgx.Tracer
}

var (
	_ pgx.QueryTracer    = queryTracer{}
	_ pgx.BatchTracer    = queryTracer{}
	_ pgx.CopyFromTracer = queryTracer{}
	_ pgx.ConnectTracer  = queryTracer{}
)

// TraceQueryStart implements pgx.QueryTracer.
func (q queryTracer) TraceQueryStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	return q.t.TraceQueryStart(ctx, conn, data)
}

// TraceQueryEnd implements pgx.QueryTracer.
func (q queryTracer) TraceQueryEnd(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryEndData) {
	q.t.TraceQueryEnd(ctx, conn, data)
}

// TraceBatchStart implements pgx.BatchTracer.
func (q queryTracer) TraceBatchStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceBatchStartData) context.Context {
	return q.t.TraceBatchStart(ctx, conn, data)
}

// TraceBatchQuery implements pgx.BatchTracer.
func (q queryTracer) TraceBatchQuery(ctx context.Context, conn *pgx.Conn, data pgx.TraceBatchQueryData) {
	q.t.TraceBatchQuery(ctx, conn, data)
}

// TraceBatchEnd implements pgx.BatchTracer.
func (q queryTracer) TraceBatchEnd(ctx context.Context, conn *pgx.Conn, data pgx.TraceBatchEndData) {
	q.t.TraceBatchEnd(ctx, conn, data)
}

// TraceCopyFromStart implements pgx.CopyFromTracer.
func (q queryTracer) TraceCopyFromStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceCopyFromStartData) context.Context {
	return q.t.TraceCopyFromStart(ctx, conn, data)
}

// TraceCopyFromEnd implements pgx.CopyFromTracer.
func (q queryTracer) TraceCopyFromEnd(ctx context.Context, conn *pgx.Conn, data pgx.TraceCopyFromEndData) {
	q.t.TraceCopyFromEnd(ctx, conn, data)
}

// TraceConnectStart implements pgx.ConnectTracer.
func (q queryTracer) TraceConnectStart(ctx context.Context, data pgx.TraceConnectStartData) context.Context {
	return q.t.TraceConnectStart(ctx, data)
}

// TraceConnectEnd implements pgx.ConnectTracer.
func (q queryTracer) TraceConnectEnd(ctx context.Context, data pgx.TraceConnectEndData) {
	q.t.TraceConnectEnd(ctx, data)
}
