package bolt

import (
	"sync"
	"time"

	"github.com/callctx/callctx/session"
)

// readCache holds the records of active calls' sessions, with their
// canonical JSON and the session decoded, and the calls themselves, so
// that the hot read path (GET /v1/sessions/{id}) needs no bbolt
// transaction and a write, or the end of a call, decodes nothing.
//
// Only writers fill it, after their commit and before they acknowledge, and
// a version replaces only an older one, so the cache never goes back in
// time and a write is visible to every read that starts after it was
// acknowledged. A miss reads bbolt and does not fill the cache: a reader
// could otherwise put back a session that a purge had just removed.
//
// An ended call's session is not kept: ended calls are kept for the whole
// retention period and are rarely read, so holding them would grow the
// cache with every call of the day. Its end leaves a tombstone (the
// version) that keeps out a writer that committed before the end and puts
// its older version after it; such a writer is microseconds late, so a
// tombstone lives tombstoneLife to 2 × tombstoneLife, not for the call's
// retention: the cache holds the active calls and the calls of the last
// seconds, however many calls a day brings.
type readCache struct {
	mu sync.RWMutex
	m  map[string]*cachedSession // pointers: a write changes its entry in place, with one lookup
	// ended and endedBefore are the tombstones of the current and the
	// previous period; rotated when the current one is tombstoneLife old.
	ended, endedBefore map[string]uint64
	rotated            time.Time
}

// tombstoneLife is how long a tombstone lives at least.
const tombstoneLife = 30 * time.Second

type cachedSession struct {
	version uint64
	rec     []byte           // the whole session record; immutable
	sess    *session.Session // rec decoded; shared, so never changed: see Patch.Applied
	// The call's stored record and the call, while it is active (both
	// immutable); nil when the cache did not see the call created.
	callRec []byte
	call    *session.Call
}

// json returns the session's canonical JSON.
func (e cachedSession) json() []byte { return e.rec[sessionHeader:] }

func newReadCache() *readCache {
	return &readCache{m: make(map[string]*cachedSession), ended: map[string]uint64{}, endedBefore: map[string]uint64{}, rotated: time.Now()}
}

func (c *readCache) get(callID string) (cachedSession, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if e := c.m[callID]; e != nil {
		return *e, true
	}
	return cachedSession{}, false
}

// put records a committed session record (header and JSON) and the
// session it holds, neither of which may change afterwards; and, when
// callRec is not nil, the active call's record and the call.
func (c *readCache) put(callID string, rec []byte, sess *session.Session, callRec []byte, call *session.Call) {
	v := recordVersion(rec)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended[callID] >= v && c.ended[callID] != 0 || c.endedBefore[callID] >= v && c.endedBefore[callID] != 0 {
		return // ended meanwhile
	}
	e := c.m[callID]
	switch {
	case e == nil:
		c.m[callID] = &cachedSession{version: v, rec: rec, sess: sess, callRec: callRec, call: call}
	case e.version < v:
		e.version, e.rec, e.sess = v, rec, sess
		if callRec != nil { // else the active call's record, which does not change
			e.callRec, e.call = callRec, call
		}
	}
}

// end records that a call ended with its session at version v: reads of it
// go to bbolt from now on.
func (c *readCache) end(callID string, v uint64) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(c.rotated) >= tombstoneLife {
		c.endedBefore, c.ended, c.rotated = c.ended, make(map[string]uint64, len(c.ended)), now
	}
	delete(c.m, callID)
	c.ended[callID] = max(c.ended[callID], v)
}

func (c *readCache) remove(callIDs ...string) {
	c.mu.Lock()
	for _, id := range callIDs {
		delete(c.m, id)
		delete(c.ended, id)
		delete(c.endedBefore, id)
	}
	c.mu.Unlock()
}
