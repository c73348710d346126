package grpcserver

import (
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/backplane/backplane/internal/database"
)

// RetryDelay is the retry advice every UNAVAILABLE answer carries (a google.rpc.RetryInfo,
// and Retry-After on the REST door) unless it names its own: long enough for a database
// failover or restart to be noticed, short enough that clients come back promptly.
const RetryDelay = time.Second

// unavailable is the one place that decides a failure is a dependency's outage rather
// than a bug: a handler's error that would answer INTERNAL but comes from an unreachable
// dependency (PostgreSQL stopped or restarting, a refused or reset connection) answers
// UNAVAILABLE instead, which clients retry, and every UNAVAILABLE answer carries
// RetryInfo. Its message says nothing of which dependency failed.
func unavailable(st *status.Status, err error) *status.Status {
	if (st.Code() == codes.Internal || st.Code() == codes.Unknown) && database.Unreachable(err) {
		st = status.New(codes.Unavailable, "the service is temporarily unavailable; retry shortly")
	}
	if st.Code() != codes.Unavailable {
		return st
	}
	for _, d := range st.Details() {
		if _, ok := d.(*errdetails.RetryInfo); ok {
			return st
		}
	}
	if with, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(RetryDelay)}); err == nil {
		return with
	}
	return st
}
