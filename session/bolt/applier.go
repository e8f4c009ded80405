package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The applier brings bbolt up to date with the write-ahead log behind the
// writes, in commits that each take every group logged since the last one,
// and drops from the overlay what bbolt then holds. Nothing waits for it
// but reads that walk an index (readApplied), so it commits at most every
// applyInterval unless such a read asks: a bbolt commit rewrites every page
// it touches and syncs twice, and the fewer there are, the less each write
// costs, however many sessions the writes are spread over.
const (
	applyInterval = 500 * time.Millisecond
	applyMaxKeys  = 20000 // commit at once past this many changed keys
	applyRetry    = 100 * time.Millisecond
)

// metaKey in the meta bucket holds the log position bbolt is applied up
// to: epoch, offset, generation (8 bytes each, big-endian).
var metaKey = []byte("wal")

type pendingGroup struct {
	gen     uint64
	end     int64 // the log offset after the group's record
	changes []change
}

type applier struct {
	db *bolt.DB
	ov *overlay

	mu       sync.Mutex
	epoch    uint64 // of the log records pending
	pending  []pendingGroup
	keys     int    // changes pending
	queued   uint64 // the generation of the last group handed over
	applied  uint64 // the generation bbolt holds
	err      error  // the last commit's failure, until one succeeds
	flushing bool   // a read waits: commit now
	closed   bool
	wake     chan struct{} // buffered (1)
	done     chan struct{} // closed when the goroutine has stopped
	progress *sync.Cond    // on mu: applied moved, or err changed
}

func newApplier(db *bolt.DB, ov *overlay, epoch, gen uint64) *applier {
	a := &applier{db: db, ov: ov, epoch: epoch, queued: gen, applied: gen, wake: make(chan struct{}, 1), done: make(chan struct{})}
	a.progress = sync.NewCond(&a.mu)
	go a.run()
	return a
}

// add hands over a logged group, already in the overlay.
func (a *applier) add(g pendingGroup) {
	a.mu.Lock()
	a.pending = append(a.pending, g)
	a.keys += len(g.changes)
	a.queued = g.gen
	now := a.keys >= applyMaxKeys || len(a.pending) == 1
	a.mu.Unlock()
	if now {
		a.signal()
	}
}

func (a *applier) signal() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// flush returns once bbolt holds every group handed over so far, or the
// error that keeps it from committing them.
func (a *applier) flush() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	target := a.queued
	for a.applied < target {
		if a.err != nil {
			return a.err
		}
		if a.closed {
			return errClosed
		}
		if !a.flushing {
			a.flushing = true
			a.signal()
		}
		a.progress.Wait()
	}
	return nil
}

// setEpoch says that the groups handed over from now on belong to a new
// epoch of the log. Only when none is pending.
func (a *applier) setEpoch(epoch uint64) {
	a.mu.Lock()
	a.epoch = epoch
	a.mu.Unlock()
}

// close commits what is pending and stops.
func (a *applier) close() {
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	a.signal()
	<-a.done
}

func (a *applier) run() {
	defer close(a.done)
	last := time.Now()
	for {
		<-a.wake
		// Let groups gather for a while, unless a read waits or the store
		// closes; a burst past applyMaxKeys commits at once.
		for {
			a.mu.Lock()
			hurry := a.flushing || a.closed || a.keys >= applyMaxKeys
			empty := len(a.pending) == 0
			closed := a.closed
			interval := applyInterval
			if a.err != nil {
				hurry, interval = false, applyRetry
				if closed {
					a.mu.Unlock()
					a.applyPending() // a last try: the cause (a full disk) may be gone by now
					return           // what is still pending stays in the log, for the next start
				}
			}
			a.mu.Unlock()
			if empty {
				if closed {
					return
				}
				break
			}
			if wait := interval - time.Since(last); !hurry && wait > 0 {
				select {
				case <-a.wake:
				case <-time.After(wait):
				}
				continue
			}
			last = time.Now()
			a.applyPending()
		}
	}
}

// applyPending commits every pending group to bbolt.
func (a *applier) applyPending() {
	a.mu.Lock()
	groups, epoch := a.pending, a.epoch
	a.mu.Unlock()
	if len(groups) == 0 {
		return
	}
	lastG := groups[len(groups)-1]
	err := a.db.Update(func(tx *bolt.Tx) error {
		for _, g := range groups {
			if err := applyChanges(tx, g.changes); err != nil {
				return err
			}
		}
		return putMeta(tx, epoch, lastG.end, lastG.gen)
	})
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.err = fmt.Errorf("apply the write-ahead log to bbolt: %w", err)
		a.flushing = false
		a.progress.Broadcast()
		return // the groups stay pending and in the overlay; run retries

	}
	a.err = nil
	a.ov.drop(lastG.gen, groups)
	a.pending = append(a.pending[:0:0], a.pending[len(groups):]...)
	for _, g := range groups {
		a.keys -= len(g.changes)
	}
	a.applied = lastG.gen
	if len(a.pending) == 0 {
		a.flushing = false
	}
	a.progress.Broadcast()
}

// Err returns why bbolt could not take the last commit, if it could not.
func (a *applier) Err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// applyChanges puts a group's changes into bbolt.
func applyChanges(tx *bolt.Tx, changes []change) error {
	for _, c := range changes {
		b := tx.Bucket(bucketNames[c.bucket()])
		key := []byte(c.key[1:])
		var err error
		if c.val == nil {
			err = b.Delete(key)
		} else {
			if c.bucket() == bLog {
				b.FillPercent = 1 // appends only: fill pages instead of splitting them in half
				if seq := binary.BigEndian.Uint64(key); seq > b.Sequence() {
					err = b.SetSequence(seq)
				}
			}
			if err == nil {
				err = b.Put(key, c.val)
			}
		}
		if err != nil {
			return fmt.Errorf("%s %x: %w", bucketNames[c.bucket()], key, err)
		}
	}
	return nil
}

func putMeta(tx *bolt.Tx, epoch uint64, off int64, gen uint64) error {
	v := make([]byte, 24)
	binary.BigEndian.PutUint64(v[0:], epoch)
	binary.BigEndian.PutUint64(v[8:], uint64(off))
	binary.BigEndian.PutUint64(v[16:], gen)
	return tx.Bucket(bucketMeta).Put(metaKey, v)
}

// readMeta returns where bbolt is applied up to; a store without it (new,
// or written before the log existed) is at the start of epoch 1.
func readMeta(tx *bolt.Tx) (epoch uint64, off int64, gen uint64, err error) {
	v := tx.Bucket(bucketMeta).Get(metaKey)
	if v == nil {
		return 1, 0, 0, nil
	}
	if len(v) != 24 {
		return 0, 0, 0, errors.New("malformed write-ahead log position")
	}
	return binary.BigEndian.Uint64(v[0:]), int64(binary.BigEndian.Uint64(v[8:])), binary.BigEndian.Uint64(v[16:]), nil
}
