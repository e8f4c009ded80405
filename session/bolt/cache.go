package bolt

import "sync"

// readCache holds the canonical JSON of recently written sessions, so that
// the hot read path (GET /v1/sessions/{id}) needs no bbolt transaction.
//
// Only writers fill it, after their commit and before they acknowledge, and
// a version replaces only an older one, so the cache never goes back in
// time and a write is visible to every read that starts after it was
// acknowledged. A miss reads bbolt and does not fill the cache: a reader
// could otherwise put back a session that a purge had just removed.
type readCache struct {
	mu sync.RWMutex
	m  map[string]cachedSession
}

type cachedSession struct {
	version uint64
	rec     []byte // the whole session record; immutable
}

// json returns the session's canonical JSON.
func (e cachedSession) json() []byte { return e.rec[sessionHeader:] }

func newReadCache() *readCache { return &readCache{m: make(map[string]cachedSession)} }

func (c *readCache) get(callID string) (cachedSession, bool) {
	c.mu.RLock()
	e, ok := c.m[callID]
	c.mu.RUnlock()
	return e, ok
}

// put records a committed session record (header and JSON, which must not
// change afterwards).
func (c *readCache) put(callID string, rec []byte) {
	v := recordVersion(rec)
	c.mu.Lock()
	if e, ok := c.m[callID]; !ok || e.version < v {
		c.m[callID] = cachedSession{version: v, rec: rec}
	}
	c.mu.Unlock()
}

func (c *readCache) remove(callIDs ...string) {
	c.mu.Lock()
	for _, id := range callIDs {
		delete(c.m, id)
	}
	c.mu.Unlock()
}
