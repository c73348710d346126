package auth

import (
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/backplane/backplane/services/auth/dbsqlc"
)

// userCacheTTL is how long a user row read for GetCurrentUser is answered from memory.
// It bounds how stale a replica can be about a write another replica made: the entry is
// dated from before its read began, so a write committed anywhere is seen by every
// replica within this time. Writes through this replica are seen at once (userCache.forget).
const userCacheTTL = 500 * time.Millisecond

// userCacheMax bounds the entries held; a full cache drops what has expired, and if that
// frees nothing it stops filling until something expires.
const userCacheMax = 16384

// userCache keeps the user rows GetCurrentUser reads, the one RPC called on nearly every
// page a client shows, so that a busy user costs PostgreSQL one read per userCacheTTL
// instead of one per call. Only that read goes through it: every read a decision rests
// on (sign-in, password change, API keys, admin) still asks PostgreSQL.
type userCache struct {
	now func() time.Time

	mu      sync.Mutex
	entries map[uuid.UUID]userCacheEntry
	// gen counts forgets. A read that began before a forget must not fill the cache
	// when it ends: it may hold the row from before the write the forget was for.
	gen uint64
}

type userCacheEntry struct {
	user   dbsqlc.User
	expire time.Time
}

func newUserCache(now func() time.Time) *userCache {
	return &userCache{now: now, entries: map[uuid.UUID]userCacheEntry{}}
}

// get returns the cached row of id, if one is fresh. Otherwise it returns a ticket to
// hand to put with the row then read from PostgreSQL.
func (c *userCache) get(id uuid.UUID) (dbsqlc.User, bool, userCacheTicket) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[id]; ok {
		if now.Before(e.expire) {
			return e.user, true, userCacheTicket{}
		}
		delete(c.entries, id)
	}
	return dbsqlc.User{}, false, userCacheTicket{gen: c.gen, start: now}
}

// userCacheTicket dates a read from PostgreSQL: when it began, and the forgets seen by then.
type userCacheTicket struct {
	gen   uint64
	start time.Time
}

// put caches u, read with ticket t, unless a write was forgotten since the read began.
func (c *userCache) put(u dbsqlc.User, t userCacheTicket) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != t.gen {
		return
	}
	if len(c.entries) >= userCacheMax {
		now := c.now()
		for id, e := range c.entries {
			if !now.Before(e.expire) {
				delete(c.entries, id)
			}
		}
		if len(c.entries) >= userCacheMax {
			return
		}
	}
	c.entries[u.ID] = userCacheEntry{user: u, expire: t.start.Add(userCacheTTL)}
}

// forget drops the rows of ids, once a write to them has committed.
func (c *userCache) forget(ids ...uuid.UUID) {
	if c == nil || len(ids) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, id := range ids {
		delete(c.entries, id)
	}
}
