package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// A write is acknowledged once its group is in the write-ahead log, before
// bbolt has it. Until the applier has committed it to bbolt, what it wrote
// is in the overlay: the newest value of every key written since bbolt's
// last commit. Reads look there first, then in bbolt.
//
// The overlay's lock orders reads and the applier: a read holds it shared
// while it opens its bbolt transaction and reads, and the applier drops
// entries only under the exclusive lock, after the commit that holds them.
// A read therefore sees each key either in the overlay or in its bbolt
// snapshot, never neither.

// bucketID names a bucket in changes and the overlay.
type bucketID uint8

const (
	bCalls bucketID = iota
	bSessions
	bLog
	bByStart
	bActive
	bByEnd
	bFlowRuns
	bOutbox
	bOutboxDue
	bOutboxCall
	bOutboxFired
	numBuckets
)

// overlay holds the changes of the groups the applier has not committed.
type overlay struct {
	mu  sync.RWMutex
	m   map[string]ovEntry // bucket byte + key, but for the history log's
	log map[uint64]ovEntry // the history log's entries, by sequence number: a map of its own, with cheaper keys
	// added is how many keys m holds outside the sessions bucket: calls,
	// their indexes, flow runs, the outbox, keys that writes mostly add.
	added int
}

type ovEntry struct {
	val []byte // nil: deleted
	gen uint64 // the group that wrote it
}

func newOverlay() *overlay {
	return &overlay{m: make(map[string]ovEntry), log: make(map[uint64]ovEntry)}
}

// get returns the overlay's value of a key, and whether it has one (a nil
// value then means deleted). The caller holds mu.
func (o *overlay) get(b bucketID, key []byte, kb *[]byte) ([]byte, bool) {
	if b == bLog && len(key) == 8 {
		e, ok := o.log[binary.BigEndian.Uint64(key)]
		return e.val, ok
	}
	if len(o.m) == 0 {
		return nil, false
	}
	*kb = changeKey(*kb, b, key)
	e, ok := o.m[string(*kb)]
	return e.val, ok
}

// publish adds a group's changes.
func (o *overlay) publish(gen uint64, changes []change) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, c := range changes {
		if seq, ok := c.logSeq(); ok {
			o.log[seq] = ovEntry{val: c.val, gen: gen}
			continue
		}
		n := len(o.m)
		o.m[c.key] = ovEntry{val: c.val, gen: gen}
		if len(o.m) > n && c.bucket() != bSessions {
			o.added++
		}
	}
}

// addedKeys returns how many keys the overlay holds outside the sessions
// bucket and the history log.
func (o *overlay) addedKeys() int {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.added
}

// drop removes what groups up to gen wrote, now that bbolt has it, unless
// a later group wrote the key again. It takes the lock for dropChunk
// changes at a time: a catch-up commit can hold a hundred thousand, and
// reads and the writer wait while it is held.
func (o *overlay) drop(gen uint64, groups []pendingGroup) {
	n := 0
	o.mu.Lock()
	for _, g := range groups {
		for _, c := range g.changes {
			if n++; n%dropChunk == 0 {
				o.mu.Unlock()
				o.mu.Lock()
			}
			if seq, ok := c.logSeq(); ok {
				if e, ok := o.log[seq]; ok && e.gen <= gen {
					delete(o.log, seq)
				}
			} else if e, ok := o.m[c.key]; ok && e.gen <= gen {
				delete(o.m, c.key)
				if c.bucket() != bSessions {
					o.added--
				}
			}
		}
	}
	o.mu.Unlock()
}

// dropChunk is how many changes drop removes per hold of the lock.
const dropChunk = 4096

// reader reads the overlay over a bbolt snapshot.
type reader struct {
	tx *bolt.Tx
	ov *overlay
	kb []byte
}

func (r *reader) get(b bucketID, key []byte) []byte {
	if v, ok := r.ov.get(b, key, &r.kb); ok {
		return v
	}
	return r.tx.Bucket(bucketNames[b]).Get(key)
}

// read runs fn over the store's newest acknowledged state. What fn gets
// from r is valid only until it returns.
func (s *Store) read(fn func(r *reader) error) error {
	s.ov.mu.RLock()
	defer s.ov.mu.RUnlock()
	return s.db.View(func(tx *bolt.Tx) error { return fn(&reader{tx: tx, ov: s.ov}) })
}

// readApplied runs fn in a bbolt read transaction once bbolt holds every
// write acknowledged so far: for reads that walk an index with a cursor,
// which the overlay cannot serve.
func (s *Store) readApplied(fn func(tx *bolt.Tx) error) error {
	if err := s.applier.catchUp(); err != nil {
		return err
	}
	return s.db.View(fn)
}

// change is the new state of one key: its value, or nil for deleted.
type change struct {
	key string // bucket byte + key (changeKey)
	val []byte
}

// changeKey writes into buf, reusing its memory, the key a change and the overlay name key
// of bucket b by, and returns it.
func changeKey(buf []byte, b bucketID, key []byte) []byte {
	return append(append(buf[:0], byte(b)), key...)
}

func (c change) bucket() bucketID { return bucketID(c.key[0]) }

// logSeq returns the sequence number of a history log entry's change.
func (c change) logSeq() (uint64, bool) {
	if c.bucket() != bLog || len(c.key) != 9 {
		return 0, false
	}
	return binary.BigEndian.Uint64([]byte(c.key[1:])), true
}

// wtx is what a write sees and changes inside its group: the group's own
// changes over the overlay over bbolt.
type wtx struct {
	r       reader
	changes []change
	index   map[string]int // key → its change
	seq     uint64         // the history log's last sequence number
	err     error          // a key or value bbolt would refuse
}

func (t *wtx) get(b bucketID, key []byte) []byte {
	if len(t.changes) > 0 {
		if i, ok := t.find(b, key); ok {
			return t.changes[i].val
		}
	}
	return t.r.get(b, key)
}

// find returns where the group's change of a key is in t.changes, if it has one, and leaves
// the key as a change names it in t.r.kb. The lookup makes no copy of the key.
func (t *wtx) find(b bucketID, key []byte) (int, bool) {
	t.r.kb = changeKey(t.r.kb, b, key)
	i, ok := t.index[string(t.r.kb)]
	return i, ok
}

// put sets a key; the value is kept, so it must not change afterwards.
func (t *wtx) put(b bucketID, key, val []byte) {
	if val == nil {
		val = []byte{}
	}
	t.set(b, key, val)
}

func (t *wtx) del(b bucketID, key []byte) { t.set(b, key, nil) }

func (t *wtx) set(b bucketID, key, val []byte) {
	switch {
	case len(key) == 0 || len(key) > bolt.MaxKeySize:
		t.err = fmt.Errorf("%s: a key of %d bytes cannot be stored", bucketNames[b], len(key))
		return
	case len(val) > bolt.MaxValueSize:
		t.err = fmt.Errorf("%s: a value of %d bytes cannot be stored", bucketNames[b], len(val))
		return
	}
	if i, ok := t.find(b, key); ok {
		t.changes[i].val = val
		return
	}
	k := string(t.r.kb) // the key's one copy, kept by the change
	t.index[k] = len(t.changes)
	t.changes = append(t.changes, change{key: k, val: val})
}

// nextSeq returns the history log's next sequence number.
func (t *wtx) nextSeq() uint64 {
	t.seq++
	return t.seq
}

// Changes travel in the log as a sequence of
//
//	bucket byte, uvarint key length, key, then 0 (deleted) or uvarint value length + 1, value
func encodeChanges(b []byte, changes []change) []byte {
	for _, c := range changes {
		b = append(b, c.key[0])
		b = binary.AppendUvarint(b, uint64(len(c.key)-1))
		b = append(b, c.key[1:]...)
		if c.val == nil {
			b = append(b, 0)
			continue
		}
		b = binary.AppendUvarint(b, uint64(len(c.val))+1)
		b = append(b, c.val...)
	}
	return b
}

var errBadRecord = errors.New("malformed write-ahead log record")

func decodeChanges(p []byte) ([]change, error) {
	var out []change
	for len(p) > 0 {
		if p[0] >= byte(numBuckets) {
			return nil, errBadRecord
		}
		b := p[0]
		kl, n := binary.Uvarint(p[1:])
		if n <= 0 || uint64(len(p)-1-n) < kl {
			return nil, errBadRecord
		}
		p = p[1+n:]
		key := string(append([]byte{b}, p[:kl]...))
		p = p[kl:]
		vl, n := binary.Uvarint(p)
		if n <= 0 || (vl > 0 && uint64(len(p)-n) < vl-1) {
			return nil, errBadRecord
		}
		p = p[n:]
		var val []byte
		if vl > 0 {
			val, p = p[:vl-1:vl-1], p[vl-1:]
		}
		out = append(out, change{key: key, val: val})
	}
	return out, nil
}
