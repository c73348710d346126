package database

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// SQLSTATEs that mean the server is going away or cannot take the connection: the
// request was sound and may succeed once PostgreSQL is back.
const (
	codeAdminShutdown       = "57P01"
	codeCrashShutdown       = "57P02"
	codeCannotConnectNow    = "57P03"
	codeTooManyConnections  = "53300"
	classConnectionProblems = "08"
)

// Unreachable reports whether err means a dependency over the network could not be
// reached or dropped the connection: PostgreSQL refusing, shutting down or restarting
// (SQLSTATE class 08, 57P01-57P03, 53300), a failed connect, a reset or refused socket,
// a connection lost mid-reply. Such a failure is not the request's fault and not a bug:
// the edge answers it UNAVAILABLE (HTTP 503) with advice to retry. The caller's own
// cancellation or deadline is not unreachability, even when it cut a connection short.
func Unreachable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		switch pgErr.Code {
		case codeAdminShutdown, codeCrashShutdown, codeCannotConnectNow, codeTooManyConnections:
			return true
		}
		return strings.HasPrefix(pgErr.Code, classConnectionProblems)
	}
	if _, ok := errors.AsType[*pgconn.ConnectError](err); ok {
		return true
	}
	if _, ok := errors.AsType[*net.OpError](err); ok {
		return true
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return true
	}
	// pgx's "conn closed": a pooled connection found dead before anything was sent.
	return pgconn.SafeToRetry(err)
}
