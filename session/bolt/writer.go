package bolt

import (
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The store writes through one goroutine that drains a queue: group
// commit. Every write that arrives while a commit is on its way to disk
// waits in the queue, and the next commit, which starts the moment the
// previous one is durable, takes all of them: it runs them one after the
// other over the newest state (overlay.go), appends their changes to the
// write-ahead log as one record with one fdatasync (wal.go), puts them in
// the overlay for reads, hands them to the applier for bbolt, and then
// answers them. There is no timer: a lone write commits at once, and under
// load the groups grow by themselves to what arrives during one commit
// (DB.Batch, which this replaces, needed a delay and a size guessed per
// workload, and let small batches queue behind each other on bbolt's
// writer lock).

// maxGroup bounds the writes of one commit, so that a burst does not build
// one huge transaction; the rest go into the next.
const maxGroup = 1024

// writer is the store's writing goroutine and its queue.
type writer struct {
	s       *Store
	wal     *wal
	seq     uint64                                 // the history log's last sequence number
	observe func(writes int, commit time.Duration) // Options.OnCommit; may be nil
	onWrite func(took time.Duration)               // Options.OnWrite; may be nil
	payload []byte
	// rewindGen is the group bbolt is to hold before the log starts again
	// at 0; 0 while the log is short.
	rewindGen uint64

	mu     sync.Mutex
	queue  []*writeOp
	spare  []*writeOp // the other buffer: the group in progress
	closed bool
	wake   chan struct{} // buffered (1): the queue is no longer empty
	// lastSync is how long the last log append took, for observe.
	lastSync time.Duration
	done     chan struct{} // closed when the goroutine has stopped
}

// writeOp is one write waiting for its commit: fn, or a direct
// transaction (see writer.direct).
type writeOp struct {
	fn     func(*wtx) error
	direct func(*bolt.Tx) error
	err    error
	done   chan struct{}
}

var opPool = sync.Pool{New: func() any { return &writeOp{done: make(chan struct{}, 1)} }}

func newWriter(s *Store, log *wal, seq uint64, observe func(int, time.Duration), onWrite func(time.Duration)) *writer {
	w := &writer{s: s, wal: log, seq: seq, observe: observe, onWrite: onWrite, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go w.run()
	return w
}

// write runs fn in the next commit and returns once that commit is
// durable: nil, or the error of fn or of the commit. fn returns only
// storage errors (a domain refusal is reported through its closure, so
// that one refused write does not fail its whole group), and must be safe
// to run more than once: when it fails, the others of its group are run
// again without it.
func (w *writer) write(fn func(*wtx) error) error { return w.enqueue(fn, nil) }

// direct runs fn in a bbolt write transaction of its own, on the writer
// goroutine, once bbolt holds every write before it: for writes that walk
// an index with a cursor (the purge). Its changes are in bbolt when it
// returns, and the log is marked applied up to that point.
func (w *writer) direct(fn func(*bolt.Tx) error) error { return w.enqueue(nil, fn) }

func (w *writer) enqueue(fn func(*wtx) error, direct func(*bolt.Tx) error) error {
	op := opPool.Get().(*writeOp)
	op.fn, op.direct, op.err = fn, direct, nil
	var start time.Time
	if w.onWrite != nil {
		start = time.Now()
	}
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
	if w.onWrite != nil {
		w.onWrite(time.Since(start))
	}
	err := op.err
	op.fn, op.direct, op.err = nil, nil, nil
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
		// Direct transactions run alone, in their turn.
		for rest := group; len(rest) > 0; {
			i := 0
			for i < len(rest) && rest[i].direct == nil {
				i++
			}
			w.commit(rest[:i])
			if i < len(rest) {
				w.runDirect(rest[i])
				i++
			}
			rest = rest[i:]
		}
		clear(group)
		if cap(group) <= 4*maxGroup {
			w.spare = group[:0]
		} else {
			w.spare = nil
		}
	}
}

// commit runs a group, logs its changes and tells each write how it went.
// A write whose fn fails is taken out with its error and the rest run
// again; a failed log append fails them all.
func (w *writer) commit(group []*writeOp) {
	if len(group) == 0 {
		return
	}
	var t *wtx
	writes := 0 // that changed something
	for {
		t = w.begin()
		failed := -1
		writes = 0
		for i, op := range group {
			n := len(t.changes)
			if err := safely(op.fn, t); err != nil {
				failed = i
				op.err = err
				break
			}
			if len(t.changes) > n {
				writes++
			}
		}
		t.r.tx.Rollback()
		w.s.ov.mu.RUnlock()
		if failed < 0 {
			break
		}
		group[failed].done <- struct{}{}
		group = append(group[:failed:failed], group[failed+1:]...)
		if len(group) == 0 {
			return
		}
	}
	err := w.log(t)
	if err == nil && w.observe != nil && writes > 0 {
		w.observe(writes, w.lastSync)
	}
	for _, op := range group {
		op.err = err
		op.done <- struct{}{}
	}
}

// begin starts a group's view: the overlay held shared, over a bbolt
// snapshot. The caller rolls the snapshot back and releases the overlay.
func (w *writer) begin() *wtx {
	w.s.ov.mu.RLock()
	tx, err := w.s.db.Begin(false)
	if err != nil {
		w.s.ov.mu.RUnlock()
		panic(fmt.Sprintf("bolt: begin a read transaction: %v", err)) // only on a closed database, which the writer outlives
	}
	return &wtx{r: reader{tx: tx, ov: w.s.ov}, index: make(map[string]int, 16), seq: w.seq}
}

// log makes a group's changes durable and visible: the log record, the
// overlay, the applier.
func (w *writer) log(t *wtx) error {
	if len(t.changes) == 0 {
		return nil // every write of the group was refused or changed nothing
	}
	start := time.Now()
	w.payload = encodeChanges(w.payload[:0], t.changes)
	end, err := w.wal.append(w.payload)
	if err != nil {
		return err
	}
	w.lastSync = time.Since(start)
	w.seq = t.seq
	w.s.ov.publish(w.wal.gen, t.changes)
	w.s.applier.add(pendingGroup{gen: w.wal.gen, end: end, size: len(w.payload), changes: t.changes})
	if end >= walRewindAt {
		// bbolt first catches up with the log so far while writes go on;
		// then the log starts again once bbolt has what came since, a
		// commit's worth at most, which is all the writer waits for.
		if w.rewindGen == 0 {
			w.rewindGen = w.s.applier.soon()
		} else if w.s.applier.holds(w.rewindGen) {
			return w.rewind()
		}
	}
	return nil
}

// rewind starts the log again at 0 once bbolt holds all of it. The group
// just logged is durable whatever happens here.
func (w *writer) rewind() error {
	if err := w.s.applier.catchUp(); err != nil {
		return nil // retried after the next group
	}
	epoch := w.wal.epoch + 1
	if err := w.s.db.Update(func(tx *bolt.Tx) error { return putMeta(tx, epoch, 0, w.wal.gen) }); err != nil {
		return nil
	}
	w.wal.restart(epoch, w.wal.gen)
	w.s.applier.setEpoch(epoch)
	w.rewindGen = 0
	return nil
}

// runDirect runs a direct transaction (see direct).
func (w *writer) runDirect(op *writeOp) {
	err := w.s.applier.flush()
	if err == nil {
		err = w.s.db.Update(func(tx *bolt.Tx) error {
			if err := safelyTx(op.direct, tx); err != nil {
				return err
			}
			return putMeta(tx, w.wal.epoch, w.wal.off, w.wal.gen)
		})
	}
	op.err = err
	op.done <- struct{}{}
}

// safely runs fn, turning a panic into an error of that write alone: the
// writer goroutine serves every write of the process. The changes a
// panicking fn made are thrown away with its group's (see commit).
func safely(fn func(*wtx) error, t *wtx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("write panicked: %v", p)
		}
	}()
	if err := fn(t); err != nil {
		return err
	}
	return t.err // what bbolt would refuse fails here, not in the applier
}

func safelyTx(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("write panicked: %v", p)
		}
	}()
	return fn(tx)
}
