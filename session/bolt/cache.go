package bolt

import (
	"sync"

	"github.com/callctx/callctx/session"
)

// readCache holds the records of active calls' sessions, with their
// canonical JSON and the session decoded, so that the hot read path (GET
// /v1/sessions/{id}) needs no bbolt transaction and a write decodes
// nothing.
//
// Only writers fill it, after their commit and before they acknowledge, and
// a version replaces only an older one, so the cache never goes back in
// time and a write is visible to every read that starts after it was
// acknowledged. A miss reads bbolt and does not fill the cache: a reader
// could otherwise put back a session that a purge had just removed.
//
// An ended call's session is not kept: ended calls are kept for the whole
// retention period and are rarely read, so holding them would grow the
// cache with every call of the day. The entry shrinks to a tombstone (the
// version, no record) that reads miss but that still keeps a late writer's
// older version out, until the purge removes it.
type readCache struct {
	mu sync.RWMutex
	m  map[string]cachedSession
}

type cachedSession struct {
	version uint64
	rec     []byte           // the whole session record; immutable. nil: a tombstone
	sess    *session.Session // rec decoded; shared, so never changed: see Patch.Applied
}

// json returns the session's canonical JSON.
func (e cachedSession) json() []byte { return e.rec[sessionHeader:] }

func newReadCache() *readCache { return &readCache{m: make(map[string]cachedSession)} }

func (c *readCache) get(callID string) (cachedSession, bool) {
	c.mu.RLock()
	e, ok := c.m[callID]
	c.mu.RUnlock()
	return e, ok && e.rec != nil
}

// put records a committed session record (header and JSON) and the
// session it holds, neither of which may change afterwards.
func (c *readCache) put(callID string, rec []byte, sess *session.Session) {
	v := recordVersion(rec)
	c.mu.Lock()
	if e, ok := c.m[callID]; !ok || e.version < v {
		c.m[callID] = cachedSession{version: v, rec: rec, sess: sess}
	}
	c.mu.Unlock()
}

// end records that a call ended with its session at version v: reads of it
// go to bbolt from now on.
func (c *readCache) end(callID string, v uint64) {
	c.mu.Lock()
	if e, ok := c.m[callID]; !ok || e.version < v {
		c.m[callID] = cachedSession{version: v}
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
