package bolt

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The applier brings bbolt up to date with the write-ahead log behind the
// writes, in commits that each take every group logged since the last one,
// and drops from the overlay what bbolt then holds. Nothing waits for it
// but reads that walk an index (readApplied) and the log's restart, so it
// commits every applyInterval unless one of them asks, or sooner once
// what is pending reaches a bound:
//
//   - applyMaxKeys keys outside the sessions bucket and the history log:
//     calls and their indexes, which writes add as calls start and end. A
//     commit's work grows with the keys it writes (bbolt rewrites every
//     page it touches and syncs twice), and each commit is a burst of CPU
//     that the rest of the process and its neighbours wait behind. Writes
//     that add keys gain nothing from waiting, so they commit in small
//     batches. Writes that update sessions again cost less the longer they
//     wait: over 10,000 sessions each dirties a page of its own, and a
//     commit that takes each session several times rewrites each page once
//     for all of them. They wait the whole interval.
//   - applyMaxBytes of log: what is pending is held in memory (the
//     overlay, the groups) and is what a restart replays.
const (
	applyInterval = time.Second
	applyMaxKeys  = 4000     // keys outside the sessions bucket and the history log
	applyMaxBytes = 16 << 20 // of log not in bbolt
	applyRetry    = 100 * time.Millisecond
)

// metaKey in the meta bucket holds the log position bbolt is applied up
// to: epoch, offset, generation (8 bytes each, big-endian).
var metaKey = []byte("wal")

type pendingGroup struct {
	gen     uint64
	end     int64 // the log offset after the group's record
	size    int   // the record's payload, in bytes
	changes []change
}

type applier struct {
	db *bolt.DB
	ov *overlay

	mu       sync.Mutex
	epoch    uint64 // of the log records pending
	pending  []pendingGroup
	bytes    int    // the pending groups' payloads, in bytes
	queued   uint64 // the generation of the last group handed over
	applied  uint64 // the generation bbolt holds
	dropped  uint64 // the generation the overlay no longer shadows bbolt for (≤ applied)
	err      error  // the last commit's failure, until one succeeds
	flushTo  uint64 // commit now, until bbolt holds this generation: a read waits, or the log is to start again
	closed   bool
	wake     chan struct{} // buffered (1)
	done     chan struct{} // closed when the goroutine has stopped
	progress *sync.Cond    // on mu: applied or dropped moved, or err changed
}

func newApplier(db *bolt.DB, ov *overlay, epoch, gen uint64) *applier {
	a := &applier{db: db, ov: ov, epoch: epoch, queued: gen, applied: gen, dropped: gen, wake: make(chan struct{}, 1), done: make(chan struct{})}
	a.progress = sync.NewCond(&a.mu)
	go a.run()
	return a
}

// add hands over a logged group, already in the overlay.
func (a *applier) add(g pendingGroup) {
	a.mu.Lock()
	a.pending = append(a.pending, g)
	a.bytes += g.size
	a.queued = g.gen
	now := a.full() || len(a.pending) == 1
	a.mu.Unlock()
	if now {
		a.signal()
	}
}

// full reports whether what is pending is to be committed now. Called with
// mu held; it takes the overlay's lock inside it, so the overlay's holders
// never take mu.
func (a *applier) full() bool { return a.bytes >= applyMaxBytes || a.ov.addedKeys() >= applyMaxKeys }

func (a *applier) signal() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// flush returns once bbolt holds every group handed over so far, and the
// overlay has let go of their keys, or the error that keeps it from
// committing them. A direct transaction (writer.direct) writes bbolt under
// the overlay: a key the overlay still held would hide what it wrote.
func (a *applier) flush() error { return a.wait(func() uint64 { return a.dropped }) }

// catchUp returns once bbolt holds every group handed over so far, or the
// error that keeps it from committing them, without waiting for the overlay
// to let go of them: what the log's restart and a read of bbolt alone need.
func (a *applier) catchUp() error { return a.wait(func() uint64 { return a.applied }) }

// wait returns once reached, read with mu held, is at the last group handed
// over.
func (a *applier) wait(reached func() uint64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	target := a.queued
	for reached() < target {
		if a.err != nil {
			return a.err
		}
		if a.closed {
			return errClosed
		}
		a.hurry(target)
		a.progress.Wait()
	}
	return nil
}

// soon has bbolt catch up with every group handed over so far, without
// waiting for it, and returns the last one's generation (see holds).
func (a *applier) soon() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.hurry(a.queued)
	return a.queued
}

// holds reports whether bbolt holds generation gen.
func (a *applier) holds(gen uint64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.applied >= gen
}

// hurry has the applier commit now, until bbolt holds gen. Called with mu
// held.
func (a *applier) hurry(gen uint64) {
	if a.flushTo < gen {
		a.flushTo = gen
		a.signal()
	}
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
		// Let groups gather for a while, unless a read waits, the log is
		// to start again, the store closes, or what is pending is full.
		for {
			a.mu.Lock()
			hurry := a.flushTo > a.applied || a.closed || a.full()
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
		if err := applyGroups(tx, groups); err != nil {
			return err
		}
		return putMeta(tx, epoch, lastG.end, lastG.gen)
	})
	a.mu.Lock()
	if err != nil {
		a.err = fmt.Errorf("apply the write-ahead log to bbolt: %w", err)
		a.progress.Broadcast()
		a.mu.Unlock()
		return // the groups stay pending and in the overlay; run retries
	}
	a.err = nil
	a.pending = append(a.pending[:0:0], a.pending[len(groups):]...)
	for _, g := range groups {
		a.bytes -= g.size
	}
	a.applied = lastG.gen
	a.progress.Broadcast()
	a.mu.Unlock()
	// Outside mu, which the writer takes to hand over each group: dropping
	// a large commit's keys takes milliseconds. What a later group wrote
	// again stays.
	a.ov.drop(lastG.gen, groups)
	a.mu.Lock()
	a.dropped = lastG.gen
	a.progress.Broadcast()
	a.mu.Unlock()
}

// Err returns why bbolt could not take the last commit, if it could not.
func (a *applier) Err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// applyGroups puts the groups' changes into bbolt. The history log's are
// appends in sequence order, put as they come. Every other key is put once,
// with the last group's value, and in key order: a commit over many
// sessions then visits each page of a bucket once and in turn, instead of
// seeking from the root to another page for every write, and one over a
// few busy sessions puts each of them once.
func applyGroups(tx *bolt.Tx, groups []pendingGroup) error {
	var buckets [numBuckets]*bolt.Bucket
	bucket := func(id bucketID) *bolt.Bucket {
		if buckets[id] == nil {
			buckets[id] = tx.Bucket(bucketNames[id])
		}
		return buckets[id]
	}
	log := bucket(bLog)
	log.FillPercent = 1 // appends only: fill pages instead of splitting them in half
	var rest []orderedChange
	var seq uint64
	for _, g := range groups {
		for _, c := range g.changes {
			if c.bucket() != bLog {
				rest = append(rest, orderedChange{c, len(rest)})
				continue
			}
			if n, ok := c.logSeq(); ok && c.val != nil {
				seq = max(seq, n)
			}
			if err := applyChange(log, c); err != nil {
				return err
			}
		}
	}
	if seq > log.Sequence() {
		if err := log.SetSequence(seq); err != nil {
			return err
		}
	}
	slices.SortFunc(rest, func(a, b orderedChange) int {
		if c := strings.Compare(a.key, b.key); c != 0 {
			return c
		}
		return cmp.Compare(a.pos, b.pos)
	})
	for i, c := range rest {
		if i+1 < len(rest) && rest[i+1].key == c.key {
			continue // a later group wrote it again
		}
		if err := applyChange(bucket(c.bucket()), c.change); err != nil {
			return err
		}
	}
	return nil
}

// orderedChange is a change and its place among the changes of a commit.
type orderedChange struct {
	change
	pos int
}

func applyChange(b *bolt.Bucket, c change) error {
	key := []byte(c.key[1:])
	var err error
	if c.val == nil {
		err = b.Delete(key)
	} else {
		err = b.Put(key, c.val)
	}
	if err != nil {
		return fmt.Errorf("%s %x: %w", bucketNames[c.bucket()], key, err)
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
