// Package grpcserver builds the gRPC server that every Backplane process runs, the edge
// and each service alike, so that they all share one chain of cross-cutting behaviour:
// request ids, telemetry, access logs, panic recovery, error normalisation and request
// validation, plus health and reflection, and a graceful shutdown.
package grpcserver
