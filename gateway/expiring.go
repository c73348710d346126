package gateway

import "time"

// expiring is a map whose entries lapse, each at a time of its own: the per-user state
// the edge keeps and reads on every call (a plan's rate limit, where a user stands on
// the api_calls quota). It takes no lock: its owner's mutex guards it together with
// the rest of the state it belongs with.
type expiring[V any] struct {
	entries map[string]expiringEntry[V]
}

type expiringEntry[V any] struct {
	value   V
	expires time.Time
}

func newExpiring[V any]() expiring[V] {
	return expiring[V]{entries: map[string]expiringEntry[V]{}}
}

// get returns key's value while it has not lapsed at now. A lapsed entry is dropped,
// so that users who went quiet do not stay in memory.
func (e *expiring[V]) get(key string, now time.Time) (V, bool) {
	en, ok := e.entries[key]
	if ok && now.Before(en.expires) {
		return en.value, true
	}
	if ok {
		delete(e.entries, key)
	}
	var zero V
	return zero, false
}

// put keeps value for key until expires.
func (e *expiring[V]) put(key string, value V, expires time.Time) {
	e.entries[key] = expiringEntry[V]{value: value, expires: expires}
}

// forget drops key's entry, or every entry when key is empty.
func (e *expiring[V]) forget(key string) {
	if key == "" {
		clear(e.entries)
		return
	}
	delete(e.entries, key)
}

// sweep drops every entry lapsed at now.
func (e *expiring[V]) sweep(now time.Time) {
	for key, en := range e.entries {
		if !now.Before(en.expires) {
			delete(e.entries, key)
		}
	}
}

// len is the number of entries kept, lapsed or not.
func (e *expiring[V]) len() int { return len(e.entries) }
