package auth

import (
	"context"
	"errors"
	"time"

	"github.com/riverqueue/river"

	"github.com/backplane/backplane/internal/database"
	"github.com/backplane/backplane/internal/jobs"
	"github.com/backplane/backplane/internal/service"
)

// The service's background work, on River (internal/jobs), in the schema auth_river: the
// security emails. Each is a job inserted in the transaction of the change that causes
// it (a new account, a session, a new password), so that an email exists exactly when
// its cause is committed: a process killed after the commit loses none, and one killed
// before it sends none. The jobs are worked by any replica, which hands each email to the
// notification service with an idempotency key, so a retried job sends once.
//
//   - auth_security_email: one email, its template and data fixed when inserted;
//   - auth_password_reset: a reset asked for an address. It is inserted whether or not
//     the address has an account, so that ForgotPassword answers alike; the worker looks
//     the account up and mints the link.

// Kind implements river.JobArgs: securityEmail is itself the job that sends it. Its
// data holds single-use links, which the notification service stores too: River
// deletes a completed job after a day.
func (securityEmail) Kind() string { return "auth_security_email" }

// mailWorker works securityEmail jobs.
type mailWorker struct {
	river.WorkerDefaults[securityEmail]
	s *Server
}

// Work implements river.Worker.
func (w *mailWorker) Work(ctx context.Context, job *river.Job[securityEmail]) error {
	return w.s.notifier.Send(ctx, job.Args)
}

// resetArgs asks for a password-reset email to an address.
type resetArgs struct {
	Email string `json:"email"`
}

// Kind implements river.JobArgs.
func (resetArgs) Kind() string { return "auth_password_reset" }

// resetWorker works resetArgs jobs.
type resetWorker struct {
	river.WorkerDefaults[resetArgs]
	s *Server
}

// Work implements river.Worker. An attempt that fails after minting its link leaves
// that link unsent but valid until it expires; the next attempt mints another under the
// same idempotency key, which the notification service sends at most once.
func (w *resetWorker) Work(ctx context.Context, job *river.Job[resetArgs]) error {
	return w.s.sendReset(ctx, job.Args.Email, job.ID)
}

// mailJobTimeout bounds one attempt at handing an email over; a job still marked
// running mailRescueAfter after it started belonged to a replica that died, and is run
// again by another (the notification service's idempotency key makes that send once).
const (
	mailJobTimeout  = 10 * time.Second
	mailRescueAfter = 30 * time.Second
)

// newJobs builds the service's River client on the service's pool: it inserts the jobs
// in the store's transactions, and works them once started.
func newJobs(s *Server, deps service.Deps) (*jobs.Client, error) {
	workers := river.NewWorkers()
	river.AddWorker(workers, &mailWorker{s: s})
	river.AddWorker(workers, &resetWorker{s: s})
	return jobs.New(deps.DB, jobs.Config{
		Service:        "auth",
		Workers:        workers,
		JobTimeout:     mailJobTimeout,
		RescueAfter:    mailRescueAfter,
		Logger:         deps.Logger,
		TracerProvider: deps.TracerProvider,
		MeterProvider:  deps.MeterProvider,
	})
}

// errNoTx is a job inserted outside a transaction: a security email is inserted in the
// transaction of its cause, or it could be lost or sent for nothing.
var errNoTx = errors.New("auth: a job is inserted in the transaction of the change that causes it")

// queueMail inserts the job that sends m, in the store's transaction.
func (s *store) queueMail(ctx context.Context, m securityEmail) error {
	if s.tx == nil {
		return errNoTx
	}
	_, err := s.jobs.InsertTx(ctx, s.tx, m, nil)
	return database.TranslateError(err)
}

// queueReset inserts the job that sends a reset link to email, if it has an account.
func (s *store) queueReset(ctx context.Context, email string) error {
	return s.inTx(ctx, func(tx *store) error {
		_, err := tx.jobs.InsertTx(ctx, tx.tx, resetArgs{Email: email}, nil)
		return err
	})
}
