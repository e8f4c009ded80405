package bolt

import (
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The store writes through one goroutine that drains a queue: group
// commit. Every write that arrives while a commit is on its way to disk
// waits in the queue, and the next commit, which starts the moment the
// previous one is durable, takes all of them, in one bbolt transaction
// and one fdatasync. There is no timer: a lone write commits at once, and
// under load the groups grow by themselves to what arrives during one
// commit (DB.Batch, which this replaces, needed a delay and a size guessed
// per workload, and let small batches queue behind each other on the
// writer lock).

// maxGroup bounds the writes of one commit, so that a burst does not build
// one huge transaction; the rest go into the next.
const maxGroup = 1024

// errClosed is what a write gets once the store is closing.
var errClosed = errors.New("the store is closed")

// writer is the store's writing goroutine and its queue.
type writer struct {
	db      *bolt.DB
	observe func(writes int, commit time.Duration) // Options.OnCommit; may be nil

	mu     sync.Mutex
	queue  []*writeOp
	spare  []*writeOp // the other buffer: the group in progress
	closed bool
	wake   chan struct{} // buffered (1): the queue is no longer empty
	done   chan struct{} // closed when the goroutine has stopped
}

// writeOp is one write waiting for its commit.
type writeOp struct {
	fn   func(*bolt.Tx) error
	err  error
	done chan struct{}
}

var opPool = sync.Pool{New: func() any { return &writeOp{done: make(chan struct{}, 1)} }}

func newWriter(db *bolt.DB, observe func(int, time.Duration)) *writer {
	w := &writer{db: db, observe: observe, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go w.run()
	return w
}

// write runs fn in the next commit and returns once that commit is
// durable: nil, or the error of fn or of the commit. fn returns only
// storage errors (a domain refusal is reported through its closure, so
// that one refused write does not fail its whole group), and must be safe
// to run more than once: when it fails, the others of its group are run
// again without it.
func (w *writer) write(fn func(*bolt.Tx) error) error {
	op := opPool.Get().(*writeOp)
	op.fn, op.err = fn, nil
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		opPool.Put(op)
		return errClosed
	}
	w.queue = append(w.queue, op)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default: // already woken
	}
	<-op.done
	err := op.err
	op.fn, op.err = nil, nil
	opPool.Put(op)
	return err
}

// close lets the queued writes commit, then stops the goroutine.
func (w *writer) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	<-w.done
}

func (w *writer) run() {
	defer close(w.done)
	for {
		w.mu.Lock()
		for len(w.queue) == 0 {
			if w.closed {
				w.mu.Unlock()
				return
			}
			w.mu.Unlock()
			<-w.wake
			w.mu.Lock()
		}
		group := w.queue
		if len(group) > maxGroup {
			group = group[:maxGroup:maxGroup]
			w.queue = append(w.spare[:0], w.queue[maxGroup:]...)
		} else {
			w.queue = w.spare[:0]
		}
		w.mu.Unlock()
		w.commit(group)
		clear(group)
		if cap(group) <= 4*maxGroup {
			w.spare = group[:0]
		} else {
			w.spare = nil
		}
	}
}

// commit runs a group in one transaction and tells each write how it
// went. A write whose fn fails is taken out with its error and the rest
// run again; a failed commit fails them all.
func (w *writer) commit(group []*writeOp) {
	for len(group) > 0 {
		failed := -1
		var fnEnd time.Time
		err := w.db.Update(func(tx *bolt.Tx) error {
			for i, op := range group {
				if err := safely(op.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			fnEnd = time.Now()
			return nil
		})
		if err == nil && w.observe != nil {
			w.observe(len(group), time.Since(fnEnd))
		}
		if err == nil || failed < 0 {
			for _, op := range group {
				op.err = err
				op.done <- struct{}{}
			}
			return
		}
		op := group[failed]
		op.err = err
		op.done <- struct{}{}
		group = append(group[:failed:failed], group[failed+1:]...)
	}
}

// safely runs fn, turning a panic into an error of that write alone: the
// writer goroutine serves every write of the process.
func safely(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("write panicked: %v", p)
		}
	}()
	return fn(tx)
}
