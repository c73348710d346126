package auth

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/backplane/backplane/internal/authn"
)

// mirrorPage is how many sessions one rebuild step writes.
const mirrorPage = 1000

// KeepSessionMirror watches the Redis mirror of live sessions until ctx ends and rebuilds
// it from PostgreSQL whenever Redis has lost its contents, so that the edge neither logs
// everyone out (it answers UNAVAILABLE, not UNAUTHENTICATED, until the rebuild is done)
// nor lets an ended session back in (ended sessions are simply not rewritten).
func (s *Server) KeepSessionMirror(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := s.ensureMirror(ctx); err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "rebuild live-session mirror", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ensureMirror rebuilds the mirror if it is not ready.
func (s *Server) ensureMirror(ctx context.Context) error {
	ready, err := s.sessions.Ready(ctx)
	if err != nil || ready {
		return err
	}
	started := s.now()
	done, err := s.sessions.Rebuild(ctx, func(ctx context.Context, after string) ([]authn.LiveSession, error) {
		afterID := uuid.Nil
		if after != "" {
			if afterID, err = uuid.Parse(after); err != nil {
				return nil, err
			}
		}
		rows, err := s.store.liveSessionPage(ctx, s.now(), afterID, mirrorPage)
		if err != nil {
			return nil, err
		}
		page := make([]authn.LiveSession, len(rows))
		for i, r := range rows {
			page[i] = authn.LiveSession{ID: r.ID.String(), Expire: r.ExpireTime}
		}
		return page, nil
	})
	if err == nil {
		s.log.InfoContext(ctx, "rebuilt live-session mirror", "complete", done, "took", s.now().Sub(started))
	}
	return err
}
