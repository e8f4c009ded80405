package bolt

import (
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// commitCounter measures committed write transactions for
// Options.OnCommit. bbolt does not say how many DB.Batch functions shared a
// transaction, so every write function is wrapped to count itself into the
// transaction it runs in. Functions of a batch that bbolt rolls back and
// retries count again in the retry's transaction; a transaction that never
// commits is never reported.
type commitCounter struct {
	observe func(writes int, commit time.Duration)

	mu sync.Mutex
	// cur is the write transaction functions are running in. It keeps the
	// *bolt.Tx referenced, so that no later transaction can be allocated
	// at the same address and be mistaken for it.
	cur *txCount
}

// txCount is what is known of one write transaction.
type txCount struct {
	tx     *bolt.Tx
	writes int
	fnEnd  time.Time // when its last function returned
}

// wrap returns fn counting itself into its transaction; fn itself when c
// is nil.
func (c *commitCounter) wrap(fn func(*bolt.Tx) error) func(*bolt.Tx) error {
	if c == nil {
		return fn
	}
	return func(tx *bolt.Tx) error {
		c.mu.Lock()
		cur := c.cur
		if cur == nil || cur.tx != tx {
			// Write transactions never overlap (bbolt holds the writer lock
			// until commit), so a new one means the last is over.
			cur = &txCount{tx: tx}
			c.cur = cur
			// Commit handlers run after bbolt released the writer lock, when
			// the next transaction may have started: report cur, not c.cur.
			tx.OnCommit(func() { c.committed(cur) })
		}
		cur.writes++
		c.mu.Unlock()
		err := fn(tx)
		c.mu.Lock()
		cur.fnEnd = time.Now()
		c.mu.Unlock()
		return err
	}
}

func (c *commitCounter) committed(t *txCount) {
	c.mu.Lock()
	writes, took := t.writes, time.Since(t.fnEnd)
	if c.cur == t {
		c.cur = nil
	}
	c.mu.Unlock()
	c.observe(writes, took)
}
